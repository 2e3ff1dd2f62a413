#include "common/error.h"

#include <unistd.h>

namespace moe {
namespace {
std::string& contextStorage() {
  static std::string ctx;
  return ctx;
}
}  // namespace

void setProcessContext(int rank, int worldSize, const std::string& host) {
  contextStorage() = str("rank ", rank, "/", worldSize, " on ", host);
}

const std::string& processContext() { return contextStorage(); }

std::string hostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

void throwLibraryError(const char* lib, const char* stmt, const char* file, int line,
                       const std::string& detail) {
  throw Error(str(lib, " error in `", stmt, "` (", file, ":", line, "): ", detail));
}

}  // namespace moe
