// CUDA weighted_log_softmax (contract in weighted_log_softmax.h; the CPU reference is the spec):
// softmax_rows.cuh's two passes, the second writing w * ((z - m) - log s).
//   test: ctest --test-dir build -R kernels_gpu   benchmark: bench_kernels
#include "kernels/softmax_rows.cuh"
#include "kernels/weighted_log_softmax.h"

namespace moe::kernels {

void weightedLogSoftmaxCuda(const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
                            const float* rowWeights, float* out, void* stream) {
  rows::launch<rows::Mode::LogSoftmax>("weightedLogSoftmaxCuda", logits, type, rows, vocab, temperature, rowWeights,
                                       out, nullptr, nullptr, stream);
}

void weightedLogSoftmaxCuda(const float* logits, int64_t rows, int64_t vocab, float temperature,
                            const float* rowWeights, float* out, void* stream) {
  weightedLogSoftmaxCuda(logits, DType::F32, rows, vocab, temperature, rowWeights, out, stream);
}

}  // namespace moe::kernels
