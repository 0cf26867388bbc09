#pragma once
// SHA-256 (FIPS 180-4), used to tie a tokenized dataset to the vocabulary it
// was encoded with. Small and dependency-free; not meant to be fast.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace roformer::data {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;
  Sha256();
  void update(const void* data, std::size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  Digest finish();  // the object must not be updated afterwards

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha256::Digest sha256(std::string_view bytes);
std::string hex(const Sha256::Digest& digest);

}  // namespace roformer::data
