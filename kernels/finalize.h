// finalize_choices: from a reduced next-token distribution, the answer-choice statistics.
//
// dist [rows, vocab] is a probability distribution per row (the mixture after the all-reduce,
// or one expert's softmax). For the `choices` answer letters whose token ids are letterTokens:
//   letterProbs[r, c]  = dist[r, letterTokens[c]]                      (not renormalised)
//   choiceProbs[r, c]  = letterProbs[r, c] / sum_c letterProbs[r, c]    (renormalised)
//   letterMass[r]      = sum_c letterProbs[r, c]                        (format compliance)
//   prediction[r]      = argmax_c letterProbs[r, c] (first on ties)
//   vocabChoice[r]     = c if the argmax over the whole vocabulary is letterTokens[c], else -1
//   entropy[r]         = -sum_v dist[r, v] log dist[r, v] (nats; 0 log 0 = 0)
// Output rows have stride `maxChoices`; columns >= choices are NaN. Any output may be nullptr.
// The CPU reference accumulates in double.
#pragma once

#include <cstdint>

namespace moe::kernels {

void finalizeChoicesCpu(const float* dist, int64_t rows, int64_t vocab, const int32_t* letterTokens, int choices,
                        int maxChoices, float* letterProbs, float* choiceProbs, float* letterMass, int32_t* prediction,
                        int32_t* vocabChoice, float* entropy);

}  // namespace moe::kernels
