// weighted_softmax: probs[b, v] = w[b] * softmax(logits[b, :] / T)[v], plus per row the
// log-sum-exp of logits/T and the entropy (nats) of the unweighted distribution.
//
// This is the step that turns one expert's last-token logits into its weighted contribution to
// the mixture; summing the rows of all experts (all-reduce) gives the mixture distribution.
// The CPU reference (weighted_softmax_cpu.cpp, accumulating in double) is the specification;
// the CUDA version (weighted_softmax.cu) must match it within the tolerances in
// tests/unit/test_weighted_softmax.cpp.
#pragma once

#include <cstdint>

#include "common/version.h"

namespace moe::kernels {

// logits [rows, vocab] row-major; rowWeights [rows] (nullptr: all 1); probs [rows, vocab];
// logSumExp and entropy [rows] (either may be nullptr). temperature > 0.
void weightedSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                        const float* rowWeights, float* probs, float* logSumExp, float* entropy);

#if MOE_USE_CUDA
// Same contract on device pointers, enqueued on `stream` (a cudaStream_t; nullptr: default).
void weightedSoftmaxCuda(const float* logits, int64_t rows, int64_t vocab, float temperature,
                         const float* rowWeights, float* probs, float* logSumExp, float* entropy,
                         void* stream);
#endif

}  // namespace moe::kernels
