// weighted_log_softmax: out[b, v] = w[b] * log_softmax(logits[b, :] / T)[v].
//
// The per-expert step of geometric (log-linear) pooling: the all-reduce sums these over experts,
// and weighted_softmax with T = 1 and no weights turns the sum back into a distribution
// (normalised exp of the weighted sum of log-probabilities). Logits fp32, bf16 or fp16; out fp32.
// A logit of -inf gives -inf (times w); a row with no finite logit, or with a NaN, gives NaN.
// The CPU reference (accumulating in double, rows in parallel) is the spec; the CUDA version shares
// weighted_softmax's two-pass structure (softmax_rows.cuh).
//   test: ctest --test-dir build -R 'finalize|kernels_'
#pragma once

#include <cstdint>

#include "common/version.h"
#include "kernels/dtype.h"

namespace moe::kernels {

// logits [rows, vocab]; rowWeights [rows] (nullptr: all 1); out [rows, vocab]; temperature > 0.
void weightedLogSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                           const float* rowWeights, float* out);
void weightedLogSoftmaxCpu(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                           const float* rowWeights, float* out);

#if MOE_USE_CUDA
// Same contract on device pointers, enqueued on `stream` (cudaStream_t; nullptr: default); no host
// synchronisation. out must not overlap logits.
void weightedLogSoftmaxCuda(const float* logits, int64_t rows, int64_t vocab, float temperature,
                            const float* rowWeights, float* out, void* stream);
void weightedLogSoftmaxCuda(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                            const float* rowWeights, float* out, void* stream);
#endif

}  // namespace moe::kernels
