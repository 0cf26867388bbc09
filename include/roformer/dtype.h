#pragma once
// Element types a tensor can hold, bf16 <-> f32 conversion, and the IEEE half
// decode that checkpoint readers need.
#include <cstdint>
#include <cstring>
#include <string_view>

namespace roformer {

enum class DType : uint8_t { F32, BF16, I64 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::I64: return 8;
  }
  return 0;
}

std::string_view dtype_name(DType t);

// bf16 is stored as the upper 16 bits of an IEEE float.
struct bf16 {
  uint16_t bits;
};

inline float bf16_to_f32(bf16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even; NaN stays NaN (quiet).
inline bf16 f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

// IEEE binary16 (as checkpoints store F16) to float; every half is exactly a
// float, subnormals, infinities and NaN payloads included.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t rest = h & 0x7fffu;
  uint32_t bits;
  if (rest >= 0x7c00u) {  // inf / NaN: keep the payload
    bits = sign | 0x7f800000u | (rest & 0x3ffu) << 13;
  } else {
    // Exponent and mantissa in float position, rescaled by 2^(127-15): exact
    // for normals and subnormals alike.
    const uint32_t shifted = rest << 13;
    float f;
    std::memcpy(&f, &shifted, 4);
    f *= 5.192296858534828e33f;  // 2^112
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

}  // namespace roformer
