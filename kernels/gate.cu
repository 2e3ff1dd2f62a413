// CUDA top-k gate (contract in gate.h; the CPU reference is the spec). One warp per row, 4 rows per
// block. Round j finds the best expert strictly after round j-1's pick in the order (score
// descending, index ascending): no selection flags, ties resolved the way the CPU's stable sort
// resolves them. The unnormalised weights are written as picked, then scaled by 1/sum.
//   test: ctest --test-dir build -R 'gate|kernels_gpu'   benchmark: bench_kernels
#include <climits>
#include <cmath>

#include "kernels/cuda_check.h"
#include "kernels/gate.h"

namespace moe::kernels {
namespace {

constexpr int kRowsPerBlock = 4;

// (v, i) ranks before (bv, bi): higher score, or equal score and lower index; bi == INT_MAX is "none".
__device__ __forceinline__ bool before(float v, int i, float bv, int bi) {
  return bi == INT_MAX || v > bv || (v == bv && i < bi);
}

static __global__ void __launch_bounds__(kRowsPerBlock * 32)
    gateKernel(const float* __restrict__ scores, int64_t rows, int experts, int64_t rowStride, int64_t expertStride,
               float invT, int k, float* __restrict__ weights, int32_t* __restrict__ topIndices) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;  // the whole warp leaves together
  const float* s = scores + row * rowStride;
  float* w = weights + row * experts;
  for (int e = lane; e < experts; e += 32) w[e] = 0.f;
  __syncwarp();
  float prevV = INFINITY, top = 0.f, sum = 0.f;
  int prevI = -1;
  for (int j = 0; j < k; ++j) {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int e = lane; e < experts; e += 32) {
      const float v = s[e * expertStride];
      const bool after = v < prevV || (v == prevV && e > prevI);
      if (after && before(v, e, bv, bi)) bv = v, bi = e;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
      if (oi != INT_MAX && before(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
    if (bi == INT_MAX) break;  // only NaN left (a row the contract excludes): stop, in bounds
    if (j == 0) top = bv;
    const float ex = __expf((bv - top) * invT);
    sum += ex;
    if (lane == 0) {
      w[bi] = ex;
      if (topIndices) topIndices[row * k + j] = bi;
    }
    prevV = bv, prevI = bi;
  }
  __syncwarp();
  const float inv = 1.0f / sum;
  for (int e = lane; e < experts; e += 32) w[e] *= inv;
}

}  // namespace

void gateTopKCuda(const float* scores, int64_t rows, int experts, int64_t rowStride, int64_t expertStride,
                  float temperature, int k, float* weights, int32_t* topIndices, void* stream) {
  MOE_CHECK(rows >= 0 && experts >= 1, "gateTopKCuda: bad shape [", rows, ", ", experts, "]");
  MOE_CHECK(k >= 1 && k <= experts, "gateTopKCuda: k = ", k, " must be in [1, ", experts, "]");
  MOE_CHECK(temperature > 0 && std::isfinite(temperature) && std::isfinite(1.0f / temperature),
            "gateTopKCuda: temperature must be positive and finite, got ", temperature);
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  MOE_CHECK(blocks <= INT_MAX, "gateTopKCuda: ", rows, " rows exceed the grid limit");
  if (rows == 0) return;
  MOE_CHECK(scores && weights, "gateTopKCuda: null scores or weights");
  gateKernel<<<static_cast<unsigned>(blocks), kRowsPerBlock * 32, 0, static_cast<cudaStream_t>(stream)>>>(
      scores, rows, experts, rowStride, expertStride, 1.0f / temperature, k, weights, topIndices);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moe::kernels
