// CPU reference for the top-k gate (see gate.h): a stable sort of expert indices by descending
// score gives the order with lower-index tie-breaking; weights in double.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/error.h"
#include "kernels/gate.h"
#include "kernels/parallel_rows.h"

namespace moe::kernels {

void gateTopKCpu(const float* scores, int64_t rows, int experts, int64_t rowStride, int64_t expertStride,
                 float temperature, int k, float* weights, int32_t* topIndices) {
  MOE_CHECK(rows >= 0 && experts >= 1, "gateTopK: bad shape [", rows, ", ", experts, "]");
  MOE_CHECK(k >= 1 && k <= experts, "gateTopK: k = ", k, " must be in [1, ", experts, "]");
  MOE_CHECK(temperature > 0 && std::isfinite(temperature), "gateTopK: temperature must be > 0, got ", temperature);
  auto score = [&](int64_t r, int e) { return scores[r * rowStride + e * expertStride]; };
  for (int64_t r = 0; r < rows; ++r) {
    bool finite = false;
    for (int e = 0; e < experts; ++e) {
      MOE_CHECK(!std::isnan(score(r, e)), "gateTopK: row ", r, " expert ", e, " has a NaN score");
      finite = finite || std::isfinite(score(r, e));
    }
    MOE_CHECK(finite, "gateTopK: row ", r, " has no finite score");
  }
  const double invT = 1.0 / temperature;
  parallelRows(rows, int64_t{experts} * k, [&](int64_t begin, int64_t end) {
    std::vector<int> order(experts);
    std::vector<double> e(k);
    for (int64_t r = begin; r < end; ++r) {
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score(r, a) > score(r, b); });
      const double top = score(r, order[0]);
      double sum = 0.0;
      for (int j = 0; j < k; ++j) sum += e[j] = std::exp((score(r, order[j]) - top) * invT);
      float* w = weights + r * experts;
      std::fill(w, w + experts, 0.0f);
      for (int j = 0; j < k; ++j) {
        w[order[j]] = static_cast<float>(e[j] / sum);
        if (topIndices) topIndices[r * k + j] = order[j];
      }
    }
  });
}

}  // namespace moe::kernels
