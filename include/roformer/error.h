#pragma once
// The one error type of roformer.cpp. Library code reports every failure by
// throwing it, with a message naming the file, field or shape at fault.
#include <stdexcept>
#include <string>

namespace roformer {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) when `condition` is false. Keeps argument checks to one line.
inline void check(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace roformer

// Like check(), but builds the message only on failure: for hot paths where
// formatting shapes on every call would cost more than the work itself.
#define ROFORMER_CHECK(condition, message)                                 \
  do {                                                                     \
    if (!(condition)) throw ::roformer::Error(message);                    \
  } while (0)
