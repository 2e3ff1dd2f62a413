// The two element-wise steps of the device mixture (mixture_device.h) that have no kernel of their
// own in kernels/: scaling an expert's distribution by its weight (computeMixture's
// `w[r] * probs[r, v]`, the same single float product) and the answer-letter contribution (the same
// double log as computeMixture). Both are memory-trivial grid-stride loops; no host sync.
#include <cfloat>
#include <climits>

#include "kernels/cuda_check.h"
#include "worker/mixture_device.h"

namespace moe::detail {
namespace {

constexpr int kThreads = 256;

static __global__ void __launch_bounds__(kThreads)
    scaleRowsKernel(float* __restrict__ data, const float* __restrict__ w, int64_t cols, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads)
    data[i] *= w[i / cols];
}

static __global__ void __launch_bounds__(kThreads)
    letterKernel(const float* __restrict__ letterProbs, const float* __restrict__ choiceProbs,
                 const float* __restrict__ w, int64_t rows, int choices, int maxChoices, bool geometric,
                 float* __restrict__ out) {
  const int64_t total = rows * choices;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t r = i / choices;
    const int c = static_cast<int>(i % choices);
    if (geometric) {
      const double q = fmax(static_cast<double>(choiceProbs[r * maxChoices + c]), static_cast<double>(FLT_MIN));
      out[i] = static_cast<float>(static_cast<double>(w[r]) * log(q));
    } else {
      out[i] = w[r] * letterProbs[r * maxChoices + c];
    }
  }
}

unsigned blocksFor(int64_t total) {
  const int64_t cap = static_cast<int64_t>(kernels::detail::multiprocessorCount()) * 8;
  const int64_t want = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(want < cap ? want : cap);
}

}  // namespace

void scaleRowsCuda(float* data, const float* rowWeights, int64_t rows, int64_t cols, void* stream) {
  MOE_CHECK(rows >= 0 && cols > 0, "scaleRowsCuda: bad shape [", rows, ", ", cols, "]");
  MOE_CHECK(rows <= INT64_MAX / cols, "scaleRowsCuda: shape [", rows, ", ", cols, "] overflows");
  if (rows == 0) return;
  const int64_t total = rows * cols;
  scaleRowsKernel<<<blocksFor(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(data, rowWeights, cols,
                                                                                         total);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void letterContributionCuda(const float* letterProbs, const float* choiceProbs, const float* rowWeights,
                            int64_t rows, int choices, int maxChoices, bool geometric, float* out, void* stream) {
  MOE_CHECK(rows >= 0 && choices >= 1 && choices <= maxChoices, "letterContributionCuda: ", choices,
            " choices with room for ", maxChoices);
  if (rows == 0) return;
  letterKernel<<<blocksFor(rows * choices), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      letterProbs, choiceProbs, rowWeights, rows, choices, maxChoices, geometric, out);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moe::detail
