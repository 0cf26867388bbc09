#pragma once
// Recently freed large tensor buffers, kept for the next request of about the
// same size. A forward returns its outputs in fresh tensors that the caller
// drops before the next forward; handing such a buffer back to the C library
// lets it return the pages to the system, and the next forward then pays a
// page fault for every 4 KiB it writes (about 10 µs each on virtual
// machines). Only a few buffers and a bounded number of bytes are kept, so
// the cache cannot grow a process's memory by more than kMaxBytes.
#include <cstddef>

namespace roformer::storage_cache {

// Buffers smaller than this go straight to and from the C library.
inline constexpr std::size_t kMinBytes = std::size_t{256} << 10;
// At most this many bytes in at most kMaxBuffers buffers are kept.
inline constexpr std::size_t kMaxBytes = std::size_t{32} << 20;
inline constexpr std::size_t kMaxBuffers = 4;

// A 64-byte aligned buffer of at least `bytes` bytes (a kept one if one of
// `bytes` to bytes + bytes / 4 is there); nullptr when out of memory.
void* take(std::size_t bytes);
// Gives back a buffer from take() of that request size: kept, or freed.
void give(void* p, std::size_t bytes);
// Frees every kept buffer.
void release();
// Bytes currently kept (for tests).
std::size_t kept_bytes();
// Whether buffers are kept at all: not under AddressSanitizer, where every
// buffer goes back to the C library so that a use after free is still caught.
bool enabled();

}  // namespace roformer::storage_cache
