// moe::Error and the check macros every module uses.
//
// An error carries what went wrong and where (file, line or field when the input is a file); the
// process-wide context (rank, host) is added when the error is reported, so a multi-node failure
// says which rank on which host failed. Library-specific checks (MPI, CUDA, NCCL, HDF5) are
// specialisations of one generic macro that captures the statement and file:line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace moe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Concatenates its arguments with operator<<.
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

// "rank 3 on host node17" once set by the process's MPI setup; empty before.
void setProcessContext(int rank, int worldSize, const std::string& host);
const std::string& processContext();
std::string hostName();

// Throws moe::Error for a failed library call: "<lib> error in `stmt` (file:line): detail".
[[noreturn]] void throwLibraryError(const char* lib, const char* stmt, const char* file, int line,
                                    const std::string& detail);

}  // namespace moe

#define MOE_THROW(...) throw ::moe::Error(::moe::str(__VA_ARGS__))
#define MOE_CHECK(cond, ...)                    \
  do {                                          \
    if (!(cond)) MOE_THROW(__VA_ARGS__);        \
  } while (0)
// Generic library check: `ok` decides success from `status`, `describe` turns it into text.
#define MOE_CHECK_GEN(lib, stmt, status_t, ok, describe)                               \
  do {                                                                                 \
    status_t moe_status_ = (stmt);                                                     \
    if (!(ok(moe_status_)))                                                            \
      ::moe::throwLibraryError(lib, #stmt, __FILE__, __LINE__, describe(moe_status_)); \
  } while (0)
