// weighted_softmax: probs[b, v] = w[b] * softmax(logits[b, :] / T)[v], plus per row the
// log-sum-exp of logits/T and the entropy (nats) of the unweighted distribution.
//
// This is the step that turns one expert's last-token logits into its weighted contribution to
// the mixture; summing the rows of all experts (all-reduce) gives the mixture distribution.
// Logits may be fp32, bf16 or fp16 (the model's own dtype, read in place); outputs are fp32.
// A logit of -inf has probability 0 and adds nothing to the entropy (0 log 0 = 0); a row with no
// finite logit, or with a NaN, has NaN outputs.
// The CPU reference (weighted_softmax_cpu.cpp, accumulating in double, rows in parallel) is the
// specification; the CUDA version (weighted_softmax.cu) matches it within the tolerances of
// tests/unit/test_kernels_gpu.cpp.
//   test:      ctest --test-dir build -R 'weighted_softmax|kernels_'
//   benchmark: build/benchmarks/bench_kernels
#pragma once

#include <cstdint>

#include "common/version.h"
#include "kernels/dtype.h"

namespace moe::kernels {

// logits [rows, vocab] row-major; rowWeights [rows] (nullptr: all 1); probs [rows, vocab];
// logSumExp and entropy [rows] (either may be nullptr). temperature > 0.
void weightedSoftmaxCpu(const float* logits, int64_t rows, int64_t vocab, float temperature,
                        const float* rowWeights, float* probs, float* logSumExp, float* entropy);
// The same with logits of element type `type`.
void weightedSoftmaxCpu(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                        const float* rowWeights, float* probs, float* logSumExp, float* entropy);

#if MOE_USE_CUDA
// Same contract on device pointers, enqueued on `stream` (a cudaStream_t; nullptr: default).
// No host synchronisation: argument errors throw at once, kernel errors surface at the next
// synchronisation. Rows shorter than the GPU is wide are split over several blocks (a partial
// statistics kernel, then an output kernel; their scratch comes from cudaMallocAsync on `stream`).
// rows <= 2^31 - 1; probs must not overlap logits (the second pass re-reads them). 16-byte
// vector loads and stores are used wherever the addresses allow, for any vocab and alignment.
void weightedSoftmaxCuda(const float* logits, int64_t rows, int64_t vocab, float temperature,
                         const float* rowWeights, float* probs, float* logSumExp, float* entropy,
                         void* stream);
void weightedSoftmaxCuda(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                         const float* rowWeights, float* probs, float* logSumExp, float* entropy,
                         void* stream);
#endif

}  // namespace moe::kernels
