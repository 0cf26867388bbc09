#pragma once
// Independent items of uneven cost (texts to tokenize, paragraphs of a
// corpus) shared among threads, with errors that do not depend on the thread
// count: whichever item fails, the one reported is the failing item of
// lowest index, as a loop on one thread would report it.
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>

#include "roformer/error.h"

namespace roformer {

// fn(i) for every i in [0, n) on up to `threads` threads. When some throw,
// the lowest failing index's exception is rethrown once all are done (items
// after it are skipped where a thread already knows of the failure); an Error
// is rethrown with where(i) + ": " in front of its message.
template <class Fn, class Where>
void for_each_item(int64_t n, int threads, Fn&& fn, Where&& where) {
  check(threads >= 1, "threads must be at least 1, got " + std::to_string(threads));
  std::atomic<int64_t> failed{n};  // lowest failing index so far; n: none
  std::mutex mutex;                 // guards error
  std::exception_ptr error;
  const auto run_one = [&](int64_t i) {
    if (i > failed.load(std::memory_order_relaxed)) return;
    try {
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (i < failed.load()) {
        failed = i;
        error = std::current_exception();
      }
    }
  };
  if (threads == 1 || n < 2) {
    for (int64_t i = 0; i < n && failed.load() == n; ++i) run_one(i);
  } else {
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) run_one(i);
  }
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    throw Error(where(failed.load()) + ": " + e.what());
  }
}

}  // namespace roformer
