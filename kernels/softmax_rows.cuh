// Device side shared by weighted_softmax.cu and weighted_log_softmax.cu (included by them only).
//
// Both are two passes over each row of logits x (fp32, bf16 or fp16), z = x / T:
//   pass 1, statistics, online (one read): m = max z, s = sum e^(z-m), t = sum e^(z-m) (z-m);
//           each thread folds 16-byte vectors (4 fp32 or 8 half values: one rescale per vector),
//           then warp shuffles and shared memory merge the block's partial statistics;
//   pass 2, output (second read): softmax w e^((z-m) - log s), log-softmax w ((z-m) - log s),
//           with (z-m) = fma(x, 1/T, -m) rounded once, so large logits lose nothing.
// Work layout, chosen by the launcher without asking the device anything but its SM count:
//   rows >= ~4 blocks per SM: one block per row does both passes (the second read hits L2);
//   fewer rows: each row is cut into `chunks` ranges (>= kMinChunk elements); a partial kernel
//           writes each range's statistics to stream-ordered scratch, and an output kernel merges
//           the row's partials (warp 0) and writes its range. Either way no host synchronisation.
// 16-byte loads and stores are used on the aligned middle of every range, whatever the row
// length or base address; the unaligned head and the tail go element by element.
// Masked logits (-inf) get probability 0 and add 0 to t; a row with nothing finite gives NaN.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "common/error.h"
#include "kernels/cuda_check.h"
#include "kernels/dtype.h"

namespace moe::kernels::rows {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kMinChunk = 4096;  // elements per block when a row is split
constexpr int kMaxChunks = 64;
constexpr int kBlocksPerSm = 4;  // target resident blocks: enough loads in flight for DRAM

enum class Mode { Softmax, LogSoftmax };

// ---- element access ------------------------------------------------------------------------
template <typename T>
struct Vec {
  static constexpr int N = 16 / sizeof(T);  // elements per 16-byte load
};

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }

__device__ __forceinline__ void load16(const float* p, float (&v)[4]) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void load16(const __nv_bfloat16* p, float (&v)[8]) {
  const uint4 q = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {  // little-endian: element 2i in the low half
    v[2 * i] = __uint_as_float(w[i] << 16);
    v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ void load16(const __half* p, float (&v)[8]) {
  const uint4 q = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __half2 h;
    memcpy(&h, &w[i], 4);
    const float2 f = __half22float2(h);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

// [begin, vecBegin) and [vecEnd, end) element by element; [vecBegin, vecEnd) in 16-byte vectors.
struct Span {
  int64_t vecBegin, vecEnd;
};
template <typename T>
__device__ __forceinline__ Span alignedSpan(const T* x, int64_t begin, int64_t end) {
  constexpr int N = Vec<T>::N;
  const auto addr = reinterpret_cast<uintptr_t>(x + begin);
  const int64_t head = static_cast<int64_t>((16 - addr % 16) % 16 / sizeof(T));
  const int64_t vb = begin + head < end ? begin + head : end;
  return {vb, vb + (end - vb) / N * N};
}

// ---- online statistics ---------------------------------------------------------------------
struct Stats {
  float m, s, t;  // max z; sum e^(z-m); sum e^(z-m)(z-m)
};

// Moves the statistics to a larger max; exp(-inf) = 0 makes an empty or all-masked Stats vanish
// (a NaN already in s or t stays).
__device__ __forceinline__ void rescale(Stats& st, float m) {
  const float delta = st.m - m;
  const float c = __expf(delta);
  const float shift = c == 0.f ? 0.f : delta * st.s;
  st.t = c * (st.t + shift);
  st.s = c * st.s;
  st.m = m;
}

__device__ __forceinline__ Stats merge(Stats a, Stats b) {
  if (b.m > a.m) {
    const Stats tmp = a;
    a = b;
    b = tmp;
  }
  if (a.m == -INFINITY) return Stats{a.m, a.s + b.s, a.t + b.t};
  rescale(b, a.m);
  return Stats{a.m, a.s + b.s, a.t + b.t};
}

template <int N>
__device__ __forceinline__ void push(Stats& st, const float (&x)[N], float invT) {
  float xm = x[0];
#pragma unroll
  for (int i = 1; i < N; ++i) xm = fmaxf(xm, x[i]);
  const float zm = xm * invT;
  if (zm > st.m) rescale(st, zm);
  // Nothing finite yet: these values are all -inf (contribute 0) or NaN (poison s).
  const float m = st.m == -INFINITY ? 0.f : st.m;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const float d = fmaf(x[i], invT, -m);
    const float e = __expf(d);
    st.s += e;
    st.t += e == 0.f ? 0.f : e * d;
  }
}

__device__ __forceinline__ Stats shuffleXor(Stats st, int lane) {
  return Stats{__shfl_xor_sync(0xffffffffu, st.m, lane), __shfl_xor_sync(0xffffffffu, st.s, lane),
               __shfl_xor_sync(0xffffffffu, st.t, lane)};
}

__device__ __forceinline__ Stats warpReduce(Stats st) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) st = merge(st, shuffleXor(st, off));
  return st;
}

// Every thread of the block gets the merged statistics.
__device__ __forceinline__ Stats blockReduce(Stats st) {
  __shared__ Stats perWarp[kWarps];
  __shared__ Stats total;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  st = warpReduce(st);
  if (lane == 0) perWarp[warp] = st;
  __syncthreads();
  if (warp == 0) {
    Stats v = lane < kWarps ? perWarp[lane] : Stats{-INFINITY, 0.f, 0.f};
    v = warpReduce(v);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

// This thread's share of the statistics of x[begin, end).
template <typename T>
__device__ __forceinline__ Stats rangeStats(const T* __restrict__ x, int64_t begin, int64_t end, float invT) {
  constexpr int N = Vec<T>::N;
  Stats st{-INFINITY, 0.f, 0.f};
  const Span sp = alignedSpan(x, begin, end);
  for (int64_t i = sp.vecBegin + static_cast<int64_t>(threadIdx.x) * N; i < sp.vecEnd; i += int64_t{kThreads} * N) {
    float v[N];
    load16(x + i, v);
    push(st, v, invT);
  }
  const int64_t headLen = sp.vecBegin - begin;
  for (int64_t j = threadIdx.x; j < headLen + (end - sp.vecEnd); j += kThreads) {
    const int64_t i = j < headLen ? begin + j : sp.vecEnd + (j - headLen);
    const float v[1] = {toFloat(x[i])};
    push(st, v, invT);
  }
  return st;
}

template <Mode M>
__device__ __forceinline__ float outputValue(float x, float invT, float m, float logS, float w) {
  const float d = fmaf(x, invT, -m) - logS;
  if constexpr (M == Mode::Softmax) {
    return w * __expf(d);
  } else {
    return w * d;
  }
}

// Writes out[begin, end) from x[begin, end) given the row's max m and log s.
template <Mode M, typename T>
__device__ __forceinline__ void writeRange(const T* __restrict__ x, float* __restrict__ out, int64_t begin,
                                           int64_t end, float invT, float m, float logS, float w) {
  constexpr int N = Vec<T>::N;
  const Span sp = alignedSpan(x, begin, end);
  // x's aligned middle starts where out is 16-byte aligned too, or never (then scalar stores).
  const bool vecOut = reinterpret_cast<uintptr_t>(out + sp.vecBegin) % 16 == 0;
  for (int64_t i = sp.vecBegin + static_cast<int64_t>(threadIdx.x) * N; i < sp.vecEnd; i += int64_t{kThreads} * N) {
    float v[N];
    load16(x + i, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = outputValue<M>(v[k], invT, m, logS, w);
    if (vecOut) {
#pragma unroll
      for (int k = 0; k < N; k += 4)
        *reinterpret_cast<float4*>(out + i + k) = make_float4(v[k], v[k + 1], v[k + 2], v[k + 3]);
    } else {
#pragma unroll
      for (int k = 0; k < N; ++k) out[i + k] = v[k];
    }
  }
  const int64_t headLen = sp.vecBegin - begin;
  for (int64_t j = threadIdx.x; j < headLen + (end - sp.vecEnd); j += kThreads) {
    const int64_t i = j < headLen ? begin + j : sp.vecEnd + (j - headLen);
    out[i] = outputValue<M>(toFloat(x[i]), invT, m, logS, w);
  }
}

// Row outputs that only the softmax has: log-sum-exp and entropy.
template <Mode M>
__device__ __forceinline__ void writeRowStats(int64_t row, const Stats& st, float logS, float* lse, float* entropy) {
  if constexpr (M == Mode::Softmax) {
    if (lse) lse[row] = st.m + logS;
    if (entropy) entropy[row] = logS - st.t / st.s;
  }
}

struct Args {
  int64_t vocab;
  float invT;
  const float* weights;
  float* out;
  float* lse;
  float* entropy;
};

// One block per row, both passes.
template <Mode M, typename T>
static __global__ void __launch_bounds__(kThreads) fusedKernel(const T* __restrict__ logits, Args a) {
  const int64_t row = blockIdx.x;
  const T* x = logits + row * a.vocab;
  const Stats st = blockReduce(rangeStats(x, 0, a.vocab, a.invT));
  const float logS = __logf(st.s);
  if (threadIdx.x == 0) writeRowStats<M>(row, st, logS, a.lse, a.entropy);
  const float w = a.weights ? a.weights[row] : 1.0f;
  writeRange<M>(x, a.out + row * a.vocab, 0, a.vocab, a.invT, st.m, logS, w);
}

// Grid (rows, chunks): statistics of one range of one row -> partials[row * chunks + chunk].
template <typename T>
static __global__ void __launch_bounds__(kThreads)
    partialKernel(const T* __restrict__ logits, int64_t vocab, int64_t chunkLen, float invT, Stats* partials) {
  const int64_t row = blockIdx.x, begin = blockIdx.y * chunkLen;
  const int64_t end = begin + chunkLen < vocab ? begin + chunkLen : vocab;
  const Stats st = blockReduce(rangeStats(logits + row * vocab, begin, end, invT));
  if (threadIdx.x == 0) partials[row * gridDim.y + blockIdx.y] = st;
}

// Grid (rows, chunks): merge the row's partials, write one range.
template <Mode M, typename T>
static __global__ void __launch_bounds__(kThreads)
    outputKernel(const T* __restrict__ logits, Args a, int64_t chunkLen, const Stats* __restrict__ partials) {
  __shared__ Stats total;
  const int64_t row = blockIdx.x, begin = blockIdx.y * chunkLen;
  const int64_t end = begin + chunkLen < a.vocab ? begin + chunkLen : a.vocab;
  if (threadIdx.x < 32) {
    Stats st{-INFINITY, 0.f, 0.f};
    for (unsigned c = threadIdx.x; c < gridDim.y; c += 32) st = merge(st, partials[row * gridDim.y + c]);
    st = warpReduce(st);
    if (threadIdx.x == 0) total = st;
  }
  __syncthreads();
  const Stats st = total;
  const float logS = __logf(st.s);
  if (blockIdx.y == 0 && threadIdx.x == 0) writeRowStats<M>(row, st, logS, a.lse, a.entropy);
  const float w = a.weights ? a.weights[row] : 1.0f;
  writeRange<M>(logits + row * a.vocab, a.out + row * a.vocab, begin, end, a.invT, st.m, logS, w);
}

// ---- host side -----------------------------------------------------------------------------
struct Plan {
  int chunks;
  int64_t chunkLen;
};

// Enough blocks to keep every SM busy: split rows only when there are too few of them.
inline Plan plan(int64_t rows, int64_t vocab, int sms) {
  const int64_t target = int64_t{kBlocksPerSm} * sms;
  int64_t chunks = rows >= target ? 1 : (target + rows - 1) / rows;
  chunks = std::min<int64_t>({chunks, (vocab + kMinChunk - 1) / kMinChunk, int64_t{kMaxChunks}});
  if (chunks <= 1) return {1, vocab};
  int64_t len = (vocab + chunks - 1) / chunks;
  len = (len + 63) / 64 * 64;  // ranges start on 64-element boundaries
  return {static_cast<int>((vocab + len - 1) / len), len};
}

template <Mode M, typename T>
void launchTyped(const void* logits, int64_t rows, const Args& a, cudaStream_t stream) {
  const T* x = static_cast<const T*>(logits);
  const Plan p = plan(rows, a.vocab, detail::multiprocessorCount());
  if (p.chunks == 1) {
    fusedKernel<M, T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, a);
    MOE_CUDA_CHECK(cudaGetLastError());
    return;
  }
  detail::StreamScratch scratch(sizeof(Stats) * static_cast<size_t>(rows) * p.chunks, stream);
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(p.chunks));
  partialKernel<T><<<grid, kThreads, 0, stream>>>(x, a.vocab, p.chunkLen, a.invT, scratch.as<Stats>());
  MOE_CUDA_CHECK(cudaGetLastError());
  outputKernel<M, T><<<grid, kThreads, 0, stream>>>(x, a, p.chunkLen, scratch.as<Stats>());
  MOE_CUDA_CHECK(cudaGetLastError());
}

template <Mode M>
void launch(const char* name, const void* logits, DType type, int64_t rows, int64_t vocab, float temperature,
            const float* weights, float* out, float* lse, float* entropy, void* stream) {
  MOE_CHECK(rows >= 0 && vocab > 0, name, ": bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(rows <= INT_MAX, name, ": ", rows, " rows exceed the grid limit of ", INT_MAX);
  MOE_CHECK(temperature > 0 && std::isfinite(temperature) && std::isfinite(1.0f / temperature), name,
            ": temperature must be positive and finite, got ", temperature);
  MOE_CHECK(logits && out, name, ": null logits or output");
  MOE_CHECK(reinterpret_cast<uintptr_t>(logits) % dtypeSize(type) == 0 && reinterpret_cast<uintptr_t>(out) % 4 == 0,
            name, ": misaligned logits or output");
  if (rows == 0) return;
  const Args a{vocab, 1.0f / temperature, weights, out, lse, entropy};
  const auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case DType::F32:
      return launchTyped<M, float>(logits, rows, a, s);
    case DType::BF16:
      return launchTyped<M, __nv_bfloat16>(logits, rows, a, s);
    case DType::F16:
      return launchTyped<M, __half>(logits, rows, a, s);
  }
}

}  // namespace moe::kernels::rows
