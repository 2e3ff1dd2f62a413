// Small helpers shared by the unit tests.
#pragma once

#include <functional>
#include <string>

#include "common/error.h"

namespace moe::test {

// The message of the moe::Error that `f` throws, or "(no error)" when it throws none (so a failed
// expectation prints what happened).
inline std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace moe::test
