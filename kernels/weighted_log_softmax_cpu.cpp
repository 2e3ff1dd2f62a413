// CPU reference for weighted_log_softmax (see weighted_log_softmax.h); accumulates in double.
#include <cmath>

#include "common/error.h"
#include "kernels/weighted_log_softmax.h"

namespace moe::kernels {

void weightedLogSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                           const float* rowWeights, float* out) {
  MOE_CHECK(rows >= 0 && vocab > 0, "weightedLogSoftmax: bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(temperature > 0 && std::isfinite(temperature), "weightedLogSoftmax: temperature must be > 0, got ",
            temperature);
  const double invT = 1.0 / temperature;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * vocab;
    double m = -INFINITY;
    for (int64_t v = 0; v < vocab; ++v) m = std::max(m, x[v] * invT);
    double s = 0.0;
    for (int64_t v = 0; v < vocab; ++v) s += std::exp(x[v] * invT - m);
    const double lse = m + std::log(s);
    const double w = rowWeights ? rowWeights[r] : 1.0;
    for (int64_t v = 0; v < vocab; ++v) out[r * vocab + v] = static_cast<float>(w * (x[v] * invT - lse));
  }
}

}  // namespace moe::kernels
