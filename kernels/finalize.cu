// CUDA finalize_choices (contract in finalize.h; the CPU reference is the spec).
// Only the vocabulary arg-max and the entropy need the whole row: a scan kernel over ranges of
// each row (split as in softmax_rows.cuh, 16-byte loads) writes {max, first index of max, sum of
// -p log p} per range to stream-ordered scratch; a one-warp-per-row kernel merges the ranges and
// computes the letter statistics in double, exactly as the CPU does. Letter token ids travel in
// the launch parameters. No host synchronisation.
//   test: ctest --test-dir build -R kernels_gpu   benchmark: bench_kernels
#include <math_constants.h>

#include <cfloat>

#include "kernels/finalize.h"
#include "kernels/softmax_rows.cuh"

namespace moe::kernels {
namespace {

struct Best {
  float v;    // largest probability
  int32_t i;  // its first index
  float h;    // sum of -p log p
};

__device__ __forceinline__ void take(Best& b, float v, int32_t i) {
  if (v > b.v || (v == b.v && i < b.i)) b.v = v, b.i = i;
}

__device__ __forceinline__ void add(Best& b, float p, int32_t i) {
  take(b, p, i);
  // p below the smallest normal adds < 1e-36; skipping it keeps flushed denormals out of log.
  if (p >= FLT_MIN) b.h -= p * __logf(p);
}

__device__ __forceinline__ Best warpReduce(Best b) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, b.v, off);
    const int32_t i = __shfl_xor_sync(0xffffffffu, b.i, off);
    b.h += __shfl_xor_sync(0xffffffffu, b.h, off);
    take(b, v, i);
  }
  return b;
}

constexpr int kThreads = rows::kThreads;

// Grid (rows, chunks): one range of one row -> partials[row * chunks + chunk].
static __global__ void __launch_bounds__(kThreads)
    scanKernel(const float* __restrict__ dist, int64_t vocab, int64_t chunkLen, Best* __restrict__ partials) {
  const int64_t row = blockIdx.x, begin = blockIdx.y * chunkLen;
  const int64_t end = begin + chunkLen < vocab ? begin + chunkLen : vocab;
  const float* x = dist + row * vocab;
  Best b{-INFINITY, INT_MAX, 0.f};
  const rows::Span sp = rows::alignedSpan(x, begin, end);
  for (int64_t i = sp.vecBegin + threadIdx.x * 4; i < sp.vecEnd; i += kThreads * 4) {
    const float4 q = *reinterpret_cast<const float4*>(x + i);
    add(b, q.x, static_cast<int32_t>(i));
    add(b, q.y, static_cast<int32_t>(i + 1));
    add(b, q.z, static_cast<int32_t>(i + 2));
    add(b, q.w, static_cast<int32_t>(i + 3));
  }
  const int64_t headLen = sp.vecBegin - begin;
  for (int64_t j = threadIdx.x; j < headLen + (end - sp.vecEnd); j += kThreads) {
    const int64_t i = j < headLen ? begin + j : sp.vecEnd + (j - headLen);
    add(b, x[i], static_cast<int32_t>(i));
  }
  __shared__ Best perWarp[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  b = warpReduce(b);
  if (lane == 0) perWarp[warp] = b;
  __syncthreads();
  if (warp == 0) {
    b = lane < kThreads / 32 ? perWarp[lane] : Best{-INFINITY, INT_MAX, 0.f};
    b = warpReduce(b);
    if (lane == 0) partials[row * gridDim.y + blockIdx.y] = b;
  }
}

struct Letters {
  int32_t token[kMaxCudaChoices];
};

struct Outputs {
  float* letterProbs;
  float* choiceProbs;
  float* letterMass;
  int32_t* prediction;
  int32_t* vocabChoice;
  float* entropy;
};

// One warp per row: merge the scan's ranges (chunks == 0: no scan), then the letters on lane 0.
static __global__ void __launch_bounds__(32)
    choicesKernel(const float* __restrict__ dist, int64_t vocab, Letters letters, int choices, int maxChoices,
                  const Best* __restrict__ partials, int chunks, Outputs o) {
  const int64_t row = blockIdx.x;
  const int lane = threadIdx.x;
  Best b{-INFINITY, INT_MAX, 0.f};
  for (int c = lane; c < chunks; c += 32) {
    const Best q = partials[row * chunks + c];
    take(b, q.v, q.i);
    b.h += q.h;
  }
  b = warpReduce(b);
  if (lane != 0) return;
  const float* p = dist + row * vocab;
  double mass = 0.0;
  int best = 0;
  for (int c = 0; c < choices; ++c) {
    const float v = p[letters.token[c]];
    mass += v;
    if (v > p[letters.token[best]]) best = c;
  }
  for (int c = 0; c < maxChoices; ++c) {
    const bool used = c < choices;
    const float v = used ? p[letters.token[c]] : 0.f;
    if (o.letterProbs) o.letterProbs[row * maxChoices + c] = used ? v : CUDART_NAN_F;
    if (o.choiceProbs)
      o.choiceProbs[row * maxChoices + c] =
          used ? (mass > 0 ? static_cast<float>(v / mass) : __frcp_rn(static_cast<float>(choices))) : CUDART_NAN_F;
  }
  if (o.letterMass) o.letterMass[row] = static_cast<float>(mass);
  if (o.prediction) o.prediction[row] = best;
  if (o.vocabChoice) {
    int32_t vc = -1;
    for (int c = 0; c < choices; ++c)
      if (letters.token[c] == b.i) vc = c;
    o.vocabChoice[row] = vc;
  }
  if (o.entropy) o.entropy[row] = b.h;
}

}  // namespace

void finalizeChoicesCuda(const float* dist, int64_t rows, int64_t vocab, const int32_t* letterTokens, int choices,
                         int maxChoices, float* letterProbs, float* choiceProbs, float* letterMass,
                         int32_t* prediction, int32_t* vocabChoice, float* entropy, void* stream) {
  MOE_CHECK(rows >= 0 && vocab > 0, "finalizeChoicesCuda: bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(rows <= INT_MAX && vocab <= INT_MAX, "finalizeChoicesCuda: shape [", rows, ", ", vocab,
            "] exceeds the 2^31 - 1 limit");
  MOE_CHECK(choices >= 1 && choices <= maxChoices, "finalizeChoicesCuda: ", choices, " choices with room for ",
            maxChoices);
  MOE_CHECK(choices <= kMaxCudaChoices, "finalizeChoicesCuda: ", choices, " choices, at most ", kMaxCudaChoices);
  MOE_CHECK(dist && reinterpret_cast<uintptr_t>(dist) % 4 == 0, "finalizeChoicesCuda: null or misaligned dist");
  Letters letters{};
  for (int c = 0; c < choices; ++c) {
    MOE_CHECK(letterTokens[c] >= 0 && letterTokens[c] < vocab, "finalizeChoicesCuda: letter token ", letterTokens[c],
              " outside the vocabulary of ", vocab);
    letters.token[c] = letterTokens[c];
  }
  if (rows == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const Outputs o{letterProbs, choiceProbs, letterMass, prediction, vocabChoice, entropy};
  if (!vocabChoice && !entropy) {
    choicesKernel<<<static_cast<unsigned>(rows), 32, 0, s>>>(dist, vocab, letters, choices, maxChoices, nullptr, 0, o);
    MOE_CUDA_CHECK(cudaGetLastError());
    return;
  }
  const rows::Plan p = rows::plan(rows, vocab, detail::multiprocessorCount());
  detail::StreamScratch scratch(sizeof(Best) * static_cast<size_t>(rows) * p.chunks, s);
  scanKernel<<<dim3(static_cast<unsigned>(rows), static_cast<unsigned>(p.chunks)), kThreads, 0, s>>>(
      dist, vocab, p.chunkLen, scratch.as<Best>());
  MOE_CUDA_CHECK(cudaGetLastError());
  choicesKernel<<<static_cast<unsigned>(rows), 32, 0, s>>>(dist, vocab, letters, choices, maxChoices,
                                                           scratch.as<Best>(), p.chunks, o);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moe::kernels
