// gate: per-question expert weights from gate scores, softmax with temperature over the top k.
//
// For row r with scores s[r, 0..E) (one per expert, e.g. the allgathered outputs of a learned gate):
//   order the experts by score, highest first, ties broken by the LOWER expert index;
//   K = the first k of that order (topIndices[r, 0..k) lists them in that order);
//   weights[r, e] = exp((s_e - s_max) / T) / sum_{j in K} exp((s_j - s_max) / T)   for e in K
//   weights[r, e] = 0                                                              otherwise.
// So k = E is a plain softmax(s / T), k = 1 a one-hot on the best expert, and each row sums to 1.
// Scores are read at scores[r * rowStride + e * expertStride]: a row-major [rows, E] array is
// (rowStride E, expertStride 1); the [E, rows] result of Communicator::allgather (each rank's B
// scores after the previous rank's) is (1, rows) -- no transpose needed. weights is [rows, E]
// row-major, topIndices [rows, k] (may be nullptr).
// A score of -inf marks an expert that never gets weight; a NaN score, or a row without a finite
// score, is refused by the CPU reference (the CUDA result for such a row is unspecified).
// The CPU reference (double) is the spec. test: ctest --test-dir build -R 'gate|kernels_'
#pragma once

#include <cstdint>

#include "common/version.h"

namespace moe::kernels {

void gateTopKCpu(const float* scores, int64_t rows, int experts, int64_t rowStride, int64_t expertStride,
                 float temperature, int k, float* weights, int32_t* topIndices);

#if MOE_USE_CUDA
// Same contract on device pointers, enqueued on `stream` (cudaStream_t; nullptr: default). One warp
// per row; k rounds of a warp-wide arg-max, so cost O(k E / 32) per row (E is the expert count).
void gateTopKCuda(const float* scores, int64_t rows, int experts, int64_t rowStride, int64_t expertStride,
                  float temperature, int k, float* weights, int32_t* topIndices, void* stream);
#endif

}  // namespace moe::kernels
