// finalize_choices: from a reduced next-token distribution, the answer-choice statistics.
//
// dist [rows, vocab] is a probability distribution per row (the mixture after the all-reduce,
// or one expert's softmax). For the `choices` answer letters whose token ids are letterTokens:
//   letterProbs[r, c]  = dist[r, letterTokens[c]]                      (not renormalised)
//   choiceProbs[r, c]  = letterProbs[r, c] / sum_c letterProbs[r, c]    (renormalised; 1/choices
//                                                                         when the mass is 0)
//   letterMass[r]      = sum_c letterProbs[r, c]                        (format compliance)
//   prediction[r]      = argmax_c letterProbs[r, c] (first on ties)
//   vocabChoice[r]     = c if the argmax over the whole vocabulary (first on ties) is
//                        letterTokens[c], else -1
//   entropy[r]         = -sum_v dist[r, v] log dist[r, v] (nats; 0 log 0 = 0)
// Output rows have stride `maxChoices`; columns >= choices are NaN. Any output may be nullptr.
// dist holds no NaN. The CPU reference accumulates in double, rows in parallel.
//   test: ctest --test-dir build -R 'finalize|kernels_'
#pragma once

#include <cstdint>

#include "common/version.h"

namespace moe::kernels {

void finalizeChoicesCpu(const float* dist, int64_t rows, int64_t vocab, const int32_t* letterTokens, int choices,
                        int maxChoices, float* letterProbs, float* choiceProbs, float* letterMass, int32_t* prediction,
                        int32_t* vocabChoice, float* entropy);

#if MOE_USE_CUDA
constexpr int kMaxCudaChoices = 32;
// Same contract with `dist` and every output in device memory; `letterTokens` stays in HOST memory
// (the few ids travel in the launch parameters: no copy, no sync). choices <= kMaxCudaChoices,
// vocab <= 2^31 - 1. Enqueued on `stream` (cudaStream_t; nullptr: default). The letter statistics
// are exact (double, as on the CPU); the entropy is summed in float.
void finalizeChoicesCuda(const float* dist, int64_t rows, int64_t vocab, const int32_t* letterTokens, int choices,
                         int maxChoices, float* letterProbs, float* choiceProbs, float* letterMass,
                         int32_t* prediction, int32_t* vocabChoice, float* entropy, void* stream);
#endif

}  // namespace moe::kernels
