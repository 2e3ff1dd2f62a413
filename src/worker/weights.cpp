#include "worker/weights.h"

#include "common/error.h"

namespace moe {

const char* storageTypeName(StorageType t) {
  switch (t) {
    case StorageType::F32: return "F32";
    case StorageType::F16: return "F16";
    case StorageType::BF16: return "BF16";
    case StorageType::Q8_0: return "Q8_0";
    case StorageType::Q4_0: return "Q4_0";
    case StorageType::Q4_1: return "Q4_1";
    case StorageType::Q5_0: return "Q5_0";
    case StorageType::Q5_1: return "Q5_1";
    case StorageType::Q4_K: return "Q4_K";
    case StorageType::Q5_K: return "Q5_K";
    case StorageType::Q6_K: return "Q6_K";
  }
  return "?";
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    MOE_CHECK(d >= 0 && (d == 0 || n <= INT64_MAX / d), "tensor shape overflows");
    n *= d;
  }
  return n;
}

}  // namespace moe
