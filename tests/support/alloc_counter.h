#pragma once
// Counts the heap allocations of the whole process, for the benchmark that
// reports allocations per training step and the test that asserts there are
// none. Linking alloc_counter.cpp replaces the global operator new/delete
// (every overload) with counting versions; on glibc without a sanitizer it
// also defines aligned_alloc and posix_memalign (Tensor storage uses them),
// forwarding to glibc's __libc_memalign. Direct malloc calls from C
// libraries (OpenBLAS, libgomp) are not counted.
#include <cstdint>

namespace roformer::alloc_counter {

struct Counts {
  uint64_t calls = 0;          // every counted call
  uint64_t aligned_calls = 0;  // of which C aligned_alloc / posix_memalign
  uint64_t bytes = 0;
};

Counts now();
// Whether aligned_alloc / posix_memalign are counted in this build.
bool counts_c_aligned_alloc();

}  // namespace roformer::alloc_counter
