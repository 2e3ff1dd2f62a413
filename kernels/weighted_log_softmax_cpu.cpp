// CPU reference for weighted_log_softmax (see weighted_log_softmax.h): accumulates in double, rows
// in parallel. out = w (z - m - log sum e^(z-m)), z = x / T, m = max z.
#include <cmath>

#include "common/error.h"
#include "kernels/parallel_rows.h"
#include "kernels/weighted_log_softmax.h"

namespace moe::kernels {
namespace {
template <DType T>
void run(const void* logits, int64_t rows, int64_t vocab, double invT, const float* rowWeights, float* out) {
  const auto* base = static_cast<const char*>(logits);
  parallelRows(rows, vocab, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const void* x = base + r * vocab * static_cast<int64_t>(dtypeSize(T));
      double m = -INFINITY;
      for (int64_t v = 0; v < vocab; ++v) {
        const double z = elementAt<T>(x, v) * invT;
        if (z > m) m = z;
      }
      double s = 0.0;
      for (int64_t v = 0; v < vocab; ++v) s += std::exp(elementAt<T>(x, v) * invT - m);
      const double logS = std::log(s);
      const double w = rowWeights ? rowWeights[r] : 1.0;
      for (int64_t v = 0; v < vocab; ++v)
        out[r * vocab + v] = static_cast<float>(w * (elementAt<T>(x, v) * invT - m - logS));
    }
  });
}
}  // namespace

void weightedLogSoftmaxCpu(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                           const float* rowWeights, float* out) {
  MOE_CHECK(rows >= 0 && vocab > 0, "weightedLogSoftmax: bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(temperature > 0 && std::isfinite(temperature), "weightedLogSoftmax: temperature must be > 0, got ",
            temperature);
  const double invT = 1.0 / temperature;
  switch (type) {
    case DType::F32:
      return run<DType::F32>(logits, rows, vocab, invT, rowWeights, out);
    case DType::BF16:
      return run<DType::BF16>(logits, rows, vocab, invT, rowWeights, out);
    case DType::F16:
      return run<DType::F16>(logits, rows, vocab, invT, rowWeights, out);
  }
}

void weightedLogSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                           const float* rowWeights, float* out) {
  weightedLogSoftmaxCpu(logits, DType::F32, rows, vocab, temperature, rowWeights, out);
}

}  // namespace moe::kernels
