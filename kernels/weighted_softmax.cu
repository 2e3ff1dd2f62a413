// CUDA weighted_softmax (contract in weighted_softmax.h; the CPU reference is the spec). The
// kernels live in softmax_rows.cuh, shared with weighted_log_softmax: one online pass for the
// statistics (m, s, t), one pass for w * exp(z - lse), 16-byte loads, rows split over blocks when
// there are fewer rows than the GPU has room for.
//   test: ctest --test-dir build -R 'weighted_softmax|kernels_gpu'   benchmark: bench_kernels
#include "kernels/softmax_rows.cuh"
#include "kernels/weighted_softmax.h"

namespace moe::kernels {

void weightedSoftmaxCuda(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                         const float* rowWeights, float* probs, float* logSumExp, float* entropy, void* stream) {
  rows::launch<rows::Mode::Softmax>("weightedSoftmaxCuda", logits, type, rows, vocab, temperature, rowWeights, probs,
                                    logSumExp, entropy, stream);
}

void weightedSoftmaxCuda(const float* logits, int64_t rows, int64_t vocab, float temperature,
                         const float* rowWeights, float* probs, float* logSumExp, float* entropy, void* stream) {
  weightedSoftmaxCuda(logits, DType::F32, rows, vocab, temperature, rowWeights, probs, logSumExp, entropy, stream);
}

}  // namespace moe::kernels
