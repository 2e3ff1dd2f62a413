// weighted_log_softmax: out[b, v] = w[b] * log_softmax(logits[b, :] / T)[v].
//
// The per-expert step of geometric (log-linear) pooling: the all-reduce sums these over experts,
// and weighted_softmax with T = 1 and no weights turns the sum back into a distribution
// (normalised exp of the weighted sum of log-probabilities). The CPU reference is the spec.
#pragma once

#include <cstdint>

namespace moe::kernels {

void weightedLogSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                           const float* rowWeights, float* out);

}  // namespace moe::kernels
