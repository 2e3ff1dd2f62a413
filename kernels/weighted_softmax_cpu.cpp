// CPU reference for weighted_softmax (see weighted_softmax.h). Rows are independent and run in
// parallel; each row accumulates in double.
#include <cmath>
#include <thread>
#include <vector>

#include "common/error.h"
#include "kernels/weighted_softmax.h"

namespace moe::kernels {
namespace {
void oneRow(const float* x, int64_t vocab, double invT, double w, float* out, float* lse, float* ent) {
  double m = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) m = std::max(m, static_cast<double>(x[v]) * invT);
  double s = 0.0, t = 0.0;  // sum e^(z-m), sum e^(z-m) * z
  for (int64_t v = 0; v < vocab; ++v) {
    const double z = static_cast<double>(x[v]) * invT;
    const double e = std::exp(z - m);
    s += e;
    t += e * z;
  }
  const double logS = m + std::log(s);
  for (int64_t v = 0; v < vocab; ++v)
    out[v] = static_cast<float>(w * std::exp(static_cast<double>(x[v]) * invT - logS));
  if (lse) *lse = static_cast<float>(logS);
  // H = -sum p log p = logS - sum p z
  if (ent) *ent = static_cast<float>(logS - t / s);
}
}  // namespace

void weightedSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                        const float* rowWeights, float* probs, float* logSumExp, float* entropy) {
  MOE_CHECK(rows >= 0 && vocab > 0, "weightedSoftmax: bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(temperature > 0 && std::isfinite(temperature), "weightedSoftmax: temperature must be > 0, got ", temperature);
  const double invT = 1.0 / temperature;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      oneRow(logits + r * vocab, vocab, invT, rowWeights ? rowWeights[r] : 1.0, probs + r * vocab,
             logSumExp ? logSumExp + r : nullptr, entropy ? entropy + r : nullptr);
  };
  const int64_t threads = std::min<int64_t>(rows, std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1 || rows * vocab < (1 << 16)) {
    run(0, rows);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (rows + threads - 1) / threads;
  for (int64_t i = 0; i < threads; ++i)
    pool.emplace_back(run, i * per, std::min(rows, (i + 1) * per));
  for (auto& t : pool) t.join();
}

}  // namespace moe::kernels
