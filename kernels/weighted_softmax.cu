// CUDA weighted_softmax (contract in weighted_softmax.h; the CPU reference is the spec).
// One block per row. Pass 1: online softmax statistics (running max m, sum e^(z-m), and
// sum e^(z-m)*z for the entropy) over the row with 16-byte loads where the row is aligned,
// merged across the block. Pass 2: write w * exp(z - lse). Test: ctest -R weighted_softmax
// (label gpu compares with the CPU reference where a device exists).
#include <cuda_runtime.h>

#include <cfloat>

#include "common/error.h"
#include "kernels/weighted_softmax.h"

#define MOE_CUDA_CHECK(stmt) \
  MOE_CHECK_GEN("CUDA", stmt, cudaError_t, [](cudaError_t s) { return s == cudaSuccess; }, cudaGetErrorString)

namespace moe::kernels {
namespace {

constexpr int kThreads = 256;

struct Stats {
  float m, s, t;
};

__device__ __forceinline__ Stats merge(Stats a, Stats b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = fmaxf(a.m, b.m);
  const float ea = __expf(a.m - m), eb = __expf(b.m - m);
  return Stats{m, a.s * ea + b.s * eb, a.t * ea + b.t * eb};
}

__device__ __forceinline__ void push(Stats& st, float z) {
  if (z > st.m) {
    const float c = __expf(st.m - z);
    st.s = st.s * c + 1.0f;
    st.t = st.t * c + z;
    st.m = z;
  } else {
    const float e = __expf(z - st.m);
    st.s += e;
    st.t += e * z;
  }
}

static __global__ void weightedSoftmaxKernel(const float* __restrict__ logits, int64_t vocab, float invT,
                                             const float* __restrict__ weights, float* __restrict__ probs,
                                             float* __restrict__ lse, float* __restrict__ entropy) {
  const int64_t row = blockIdx.x;
  const float* x = logits + row * vocab;
  float* out = probs + row * vocab;
  Stats st{-INFINITY, 0.f, 0.f};
  const bool vec = (reinterpret_cast<uintptr_t>(x) % 16 == 0) && (vocab % 4 == 0);
  if (vec) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    for (int64_t i = threadIdx.x; i < vocab / 4; i += blockDim.x) {
      const float4 q = x4[i];
      push(st, q.x * invT);
      push(st, q.y * invT);
      push(st, q.z * invT);
      push(st, q.w * invT);
    }
  } else {
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) push(st, x[i] * invT);
  }
  // Warp reduction, then across warps through shared memory.
  for (int off = 16; off > 0; off >>= 1) {
    Stats o{__shfl_xor_sync(0xffffffff, st.m, off), __shfl_xor_sync(0xffffffff, st.s, off),
            __shfl_xor_sync(0xffffffff, st.t, off)};
    st = merge(st, o);
  }
  __shared__ Stats warpStats[kThreads / 32];
  __shared__ Stats total;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warpStats[warp] = st;
  __syncthreads();
  if (threadIdx.x == 0) {
    Stats acc{-INFINITY, 0.f, 0.f};
    for (int w = 0; w < blockDim.x / 32; ++w) acc = merge(acc, warpStats[w]);
    total = acc;
  }
  __syncthreads();
  const float logS = total.m + logf(total.s);
  const float w = weights ? weights[row] : 1.0f;
  if (threadIdx.x == 0) {
    if (lse) lse[row] = logS;
    if (entropy) entropy[row] = logS - total.t / total.s;
  }
  if (vec) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* o4 = reinterpret_cast<float4*>(out);
    for (int64_t i = threadIdx.x; i < vocab / 4; i += blockDim.x) {
      const float4 q = x4[i];
      o4[i] = make_float4(w * __expf(q.x * invT - logS), w * __expf(q.y * invT - logS),
                          w * __expf(q.z * invT - logS), w * __expf(q.w * invT - logS));
    }
  } else {
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) out[i] = w * __expf(x[i] * invT - logS);
  }
}

}  // namespace

void weightedSoftmaxCuda(const float* logits, int64_t rows, int64_t vocab, float temperature,
                         const float* rowWeights, float* probs, float* logSumExp, float* entropy, void* stream) {
  MOE_CHECK(rows >= 0 && vocab > 0, "weightedSoftmaxCuda: bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(temperature > 0, "weightedSoftmaxCuda: temperature must be > 0, got ", temperature);
  MOE_CHECK(reinterpret_cast<uintptr_t>(probs) % 16 == reinterpret_cast<uintptr_t>(logits) % 16,
            "weightedSoftmaxCuda: logits and probs must share 16-byte alignment");
  if (rows == 0) return;
  weightedSoftmaxKernel<<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      logits, vocab, 1.0f / temperature, rowWeights, probs, logSumExp, entropy);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moe::kernels
