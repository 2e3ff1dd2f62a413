#include "common/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace moe {
namespace {
LogLevel initialLevel() {
  const char* env = std::getenv("MOE_LOG_LEVEL");
  if (!env) return LogLevel::Info;
  if (!std::strcmp(env, "debug")) return LogLevel::Debug;
  if (!std::strcmp(env, "warn")) return LogLevel::Warn;
  if (!std::strcmp(env, "error")) return LogLevel::Error;
  return LogLevel::Info;
}
LogLevel gLevel = initialLevel();
int gRank = -1;
std::mutex gMutex;
}  // namespace

void setLogLevel(LogLevel level) { gLevel = level; }
LogLevel logLevel() { return gLevel; }
void setLogRank(int rank) { gRank = rank; }

void logMessage(LogLevel level, const std::string& message) {
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::lock_guard<std::mutex> lock(gMutex);
  if (gRank >= 0)
    std::fprintf(stderr, "[moe-dist %s r%d] %s\n", names[static_cast<int>(level)], gRank, message.c_str());
  else
    std::fprintf(stderr, "[moe-dist %s] %s\n", names[static_cast<int>(level)], message.c_str());
  std::fflush(stderr);
}

}  // namespace moe
