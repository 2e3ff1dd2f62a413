// Logging: one line per message to stderr, prefixed with the level and, once MPI is up, the rank.
// MOE_LOG_LEVEL=debug|info|warn|error chooses the threshold (default info).
#pragma once

#include <string>

#include "common/error.h"

namespace moe {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void setLogLevel(LogLevel level);
LogLevel logLevel();
void setLogRank(int rank);
void logMessage(LogLevel level, const std::string& message);

template <typename... Args>
void logDebug(Args&&... args) {
  if (logLevel() <= LogLevel::Debug) logMessage(LogLevel::Debug, str(std::forward<Args>(args)...));
}
template <typename... Args>
void logInfo(Args&&... args) {
  if (logLevel() <= LogLevel::Info) logMessage(LogLevel::Info, str(std::forward<Args>(args)...));
}
template <typename... Args>
void logWarn(Args&&... args) {
  if (logLevel() <= LogLevel::Warn) logMessage(LogLevel::Warn, str(std::forward<Args>(args)...));
}
template <typename... Args>
void logError(Args&&... args) {
  logMessage(LogLevel::Error, str(std::forward<Args>(args)...));
}

}  // namespace moe
