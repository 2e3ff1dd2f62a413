// Move-only owners of HDF5 identifiers and the MOE_H5_CHECK macro.
//
// Every hid_t the coordinator opens is held by an h5::Handle whose destructor closes it with the
// matching H5?close, so an exception thrown half-way through writing a batch never leaks an open
// object (an open dataset keeps the file open, and a file that is never closed is not flushed).
// Predefined types (H5T_NATIVE_INT, ...) are library constants: never wrap them.
//
// HDF5 reports failures as a negative return and pushes a stack of messages; by default it also
// prints that stack to stderr. initHdf5() turns the printing off once per process, and
// MOE_H5_CHECK / MOE_H5_ID turn the stack into the text of the moe::Error they throw instead.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace moe::h5 {

// Silences HDF5's automatic error printing (idempotent, thread-safe).
inline void initHdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace detail {
inline herr_t collectErrorEntry(unsigned, const H5E_error2_t* e, void* data) {
  char minor[160] = {0};
  if (H5Eget_msg(e->min_num, nullptr, minor, sizeof(minor)) < 0) minor[0] = '\0';
  static_cast<std::vector<std::string>*>(data)->push_back(str(e->func_name ? e->func_name : "?", "(): ",
                                                              e->desc ? e->desc : "", minor[0] ? " (" : "", minor,
                                                              minor[0] ? ")" : ""));
  return 0;
}
}  // namespace detail

// The current thread's HDF5 error stack as one line: the API call that failed, then the innermost
// cause (the entries between are HDF5's internal call path). Clears the stack.
inline std::string errorStackText(int64_t /*status*/ = -1) {
  std::vector<std::string> entries;  // outermost (the API function) first
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, detail::collectErrorEntry, &entries);
  H5Eclear2(H5E_DEFAULT);
  if (entries.empty()) return "HDF5 call failed (no error stack)";
  if (entries.size() == 1) return entries[0];
  return entries.front() + "; cause: " + entries.back();
}

// Returns `v`, or throws moe::Error with the error stack when it is negative.
template <typename T>
T checked(T v, const char* stmt, const char* file, int line) {
  if (v < 0) throwLibraryError("HDF5", stmt, file, line, errorStackText());
  return v;
}

// Owns one identifier; `Close` is the H5?close function for its kind.
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  // Closes now, ignoring failure (destructors and error paths).
  void reset() {
    if (id_ >= 0) Close(id_);
    id_ = H5I_INVALID_HID;
  }
  // Closes now and throws if HDF5 reports a failure (closing a file writes its metadata).
  void close() {
    hid_t id = std::exchange(id_, H5I_INVALID_HID);
    if (id >= 0) checked(Close(id), "close", __FILE__, __LINE__);
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using PropList = Handle<H5Pclose>;
using Attribute = Handle<H5Aclose>;

}  // namespace moe::h5

// MOE_H5_CHECK(stmt): stmt returns herr_t/htri_t/hid_t; negative is failure.
#define MOE_H5_CHECK(stmt) \
  MOE_CHECK_GEN("HDF5", stmt, int64_t, [](int64_t s) { return s >= 0; }, ::moe::h5::errorStackText)
// MOE_H5_ID(stmt): the same check as an expression yielding stmt's value (for H5?open/create).
#define MOE_H5_ID(stmt) ::moe::h5::checked((stmt), #stmt, __FILE__, __LINE__)
