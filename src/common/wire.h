// Wire messages between ranks: a byte buffer with typed little-endian writes and bounds-checked
// reads. A malformed message (a bug or a version mismatch between ranks) is a clear error, never
// an out-of-range read.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace moe {

class WireWriter {
 public:
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    buf_.insert(buf_.end(), p, p + sizeof(T));
  }
  void putString(const std::string& s) {
    put<uint64_t>(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  template <typename T>
  void putVector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    buf_.insert(buf_.end(), p, p + v.size() * sizeof(T));
  }
  void putStrings(const std::vector<std::string>& v) {
    put<uint64_t>(v.size());
    for (const auto& s : v) putString(s);
  }
  std::vector<uint8_t>& bytes() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

class WireReader {
 public:
  WireReader(const uint8_t* data, size_t size, const char* what) : p_(data), left_(size), what_(what) {}
  template <typename T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    advance(sizeof(T));
    return v;
  }
  std::string getString() {
    const uint64_t n = get<uint64_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(p_), n);
    advance(n);
    return s;
  }
  template <typename T>
  std::vector<T> getVector() {
    const uint64_t n = get<uint64_t>();
    MOE_CHECK(n <= left_ / sizeof(T), "malformed ", what_, " message: vector of ", n, " elements exceeds the ", left_,
              " bytes left");
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), p_, n * sizeof(T));
    advance(n * sizeof(T));
    return v;
  }
  std::vector<std::string> getStrings() {
    const uint64_t n = get<uint64_t>();
    MOE_CHECK(n <= left_ / sizeof(uint64_t), "malformed ", what_, " message: ", n, " strings exceed the message");
    std::vector<std::string> v;
    v.reserve(n);
    for (uint64_t i = 0; i < n; ++i) v.push_back(getString());
    return v;
  }
  bool atEnd() const { return left_ == 0; }

 private:
  void need(uint64_t n) const {
    MOE_CHECK(n <= left_, "malformed ", what_, " message: needs ", n, " more bytes, ", left_, " left");
  }
  void advance(size_t n) {
    p_ += n;
    left_ -= n;
  }
  const uint8_t* p_;
  size_t left_;
  const char* what_;
};

}  // namespace moe
