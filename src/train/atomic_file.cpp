#include "train/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "roformer/error.h"

namespace roformer::data {
namespace {

constexpr std::size_t kBufferBytes = 1 << 20;

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw Error(path + ": write failed (" + errno_text() + ")");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  std::vector<char> name(path_.begin(), path_.end());
  const std::string suffix = ".tmp-XXXXXX";
  name.insert(name.end(), suffix.begin(), suffix.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) throw Error(path_ + ": cannot create a temporary file beside it (" + errno_text() + ")");
  temp_path_ = name.data();
  buffer_.reserve(kBufferBytes);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::flush_buffer() {
  write_all(fd_, buffer_.data(), buffer_.size(), temp_path_);
  buffer_.clear();
}

void AtomicFile::write(const void* data, std::size_t size) {
  ROFORMER_CHECK(fd_ >= 0 && !committed_, path_ + ": write after commit");
  if (buffer_.size() + size > kBufferBytes) flush_buffer();
  if (size >= kBufferBytes) {
    write_all(fd_, static_cast<const char*>(data), size, temp_path_);
  } else {
    buffer_.append(static_cast<const char*>(data), size);
  }
  size_ += size;
}

void AtomicFile::write_at(uint64_t offset, const void* data, std::size_t size) {
  ROFORMER_CHECK(offset + size <= size_, path_ + ": write_at past the end of what was written");
  flush_buffer();
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t w = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw Error(temp_path_ + ": write failed (" + errno_text() + ")");
    p += w;
    offset += static_cast<uint64_t>(w);
    size -= static_cast<std::size_t>(w);
  }
}

void AtomicFile::commit() {
  ROFORMER_CHECK(fd_ >= 0 && !committed_, path_ + ": committed twice");
  flush_buffer();
  if (::fsync(fd_) != 0) throw Error(temp_path_ + ": fsync failed (" + errno_text() + ")");
  // mkstemp creates 0600; a data file should be as readable as any other.
  if (::fchmod(fd_, 0644) != 0) { /* keep 0600: still a correct file */ }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error(temp_path_ + ": close failed (" + errno_text() + ")");
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_ + ": cannot rename the temporary file into place (" + errno_text() + ")");
  }
  committed_ = true;
  // Make the rename itself durable: fsync the directory entry.
  const auto parent = std::filesystem::path(path_).parent_path();
  const int dfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

}  // namespace roformer::data
