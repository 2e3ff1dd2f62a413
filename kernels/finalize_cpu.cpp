// CPU reference for finalize_choices (see finalize.h): the spec for the CUDA version. Rows run in
// parallel; sums in double.
#include <cmath>
#include <limits>

#include "common/error.h"
#include "kernels/finalize.h"
#include "kernels/parallel_rows.h"

namespace moe::kernels {

void finalizeChoicesCpu(const float* dist, int64_t rows, int64_t vocab, const int32_t* letterTokens, int choices,
                        int maxChoices, float* letterProbs, float* choiceProbs, float* letterMass, int32_t* prediction,
                        int32_t* vocabChoice, float* entropy) {
  MOE_CHECK(rows >= 0 && vocab > 0, "finalizeChoices: bad shape [", rows, ", ", vocab, "]");
  MOE_CHECK(choices >= 1 && choices <= maxChoices, "finalizeChoices: ", choices, " choices with room for ", maxChoices);
  for (int c = 0; c < choices; ++c)
    MOE_CHECK(letterTokens[c] >= 0 && letterTokens[c] < vocab, "finalizeChoices: letter token ", letterTokens[c],
              " outside the vocabulary of ", vocab);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const bool scanVocab = vocabChoice || entropy;
  parallelRows(rows, scanVocab ? vocab : choices, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* p = dist + r * vocab;
      double mass = 0.0;
      int best = 0;
      for (int c = 0; c < choices; ++c) {
        const double v = p[letterTokens[c]];
        mass += v;
        if (v > p[letterTokens[best]]) best = c;
      }
      for (int c = 0; c < maxChoices; ++c) {
        const bool used = c < choices;
        if (letterProbs) letterProbs[r * maxChoices + c] = used ? p[letterTokens[c]] : nan;
        if (choiceProbs)
          choiceProbs[r * maxChoices + c] =
              used ? (mass > 0 ? static_cast<float>(p[letterTokens[c]] / mass) : 1.0f / choices) : nan;
      }
      if (letterMass) letterMass[r] = static_cast<float>(mass);
      if (prediction) prediction[r] = best;
      if (scanVocab) {
        int64_t arg = 0;
        double h = 0.0;
        for (int64_t v = 0; v < vocab; ++v) {
          if (p[v] > p[arg]) arg = v;
          if (p[v] > 0) h -= static_cast<double>(p[v]) * std::log(static_cast<double>(p[v]));
        }
        if (vocabChoice) {
          vocabChoice[r] = -1;
          for (int c = 0; c < choices; ++c)
            if (letterTokens[c] == arg) vocabChoice[r] = c;
        }
        if (entropy) entropy[r] = static_cast<float>(h);
      }
    }
  });
}

}  // namespace moe::kernels
