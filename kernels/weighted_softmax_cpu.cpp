// CPU reference for weighted_softmax (see weighted_softmax.h): the specification the CUDA kernel is
// tested against. Rows are independent and run in parallel; each row accumulates in double:
//   m = max z (z = x / T),  s = sum e^(z-m),  t = sum e^(z-m) (z-m)
//   p = e^(z-m) (w / s),  lse = m + log s,  H = log s - t / s
// (t relative to m keeps the entropy exact when logits are large; a -inf logit adds 0 to t).
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/parallel_rows.h"
#include "kernels/weighted_softmax.h"

namespace moe::kernels {
namespace {
// `e` is scratch for the row's exponentials (computed once, in double, reused for the output).
template <DType T>
void oneRow(const void* x, int64_t vocab, double invT, double w, double* e, float* out, float* lse, float* ent) {
  double m = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) {
    const double z = elementAt<T>(x, v) * invT;
    if (z > m) m = z;  // NaN never wins; it poisons s below
  }
  double s = 0.0, t = 0.0;
  for (int64_t v = 0; v < vocab; ++v) {
    const double d = elementAt<T>(x, v) * invT - m;
    e[v] = std::exp(d);
    s += e[v];
    if (e[v] != 0.0) t += e[v] * d;
  }
  const double scale = w / s;
  for (int64_t v = 0; v < vocab; ++v) out[v] = static_cast<float>(e[v] * scale);
  const double logS = std::log(s);
  if (lse) *lse = static_cast<float>(m + logS);
  if (ent) *ent = static_cast<float>(logS - t / s);
}

template <DType T>
void run(const void* logits, int64_t rows, int64_t vocab, double invT, const float* rowWeights, float* probs,
         float* logSumExp, float* entropy) {
  const auto* base = static_cast<const char*>(logits);
  parallelRows(rows, vocab, [&](int64_t begin, int64_t end) {
    std::vector<double> e(static_cast<size_t>(vocab));
    for (int64_t r = begin; r < end; ++r)
      oneRow<T>(base + r * vocab * static_cast<int64_t>(dtypeSize(T)), vocab, invT,
                rowWeights ? rowWeights[r] : 1.0, e.data(), probs + r * vocab, logSumExp ? logSumExp + r : nullptr,
                entropy ? entropy + r : nullptr);
  });
}
}  // namespace

void weightedSoftmaxCpu(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                        const float* rowWeights, float* probs, float* logSumExp, float* entropy) {
  MOE_CHECK(rows >= 0 && vocab > 0, "weightedSoftmax: bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(temperature > 0 && std::isfinite(temperature), "weightedSoftmax: temperature must be > 0, got ", temperature);
  const double invT = 1.0 / temperature;
  switch (type) {
    case DType::F32:
      return run<DType::F32>(logits, rows, vocab, invT, rowWeights, probs, logSumExp, entropy);
    case DType::BF16:
      return run<DType::BF16>(logits, rows, vocab, invT, rowWeights, probs, logSumExp, entropy);
    case DType::F16:
      return run<DType::F16>(logits, rows, vocab, invT, rowWeights, probs, logSumExp, entropy);
  }
}

void weightedSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                        const float* rowWeights, float* probs, float* logSumExp, float* entropy) {
  weightedSoftmaxCpu(logits, DType::F32, rows, vocab, temperature, rowWeights, probs, logSumExp, entropy);
}

}  // namespace moe::kernels
