#include "worker/mixture.h"

#include <cfloat>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "kernels/finalize.h"
#include "kernels/weighted_log_softmax.h"
#include "kernels/weighted_softmax.h"

namespace moe {

MixtureMode parseMixtureMode(const std::string& s) {
  if (s == "mean") return MixtureMode::Mean;
  if (s == "weighted") return MixtureMode::Weighted;
  if (s == "geometric") return MixtureMode::Geometric;
  MOE_THROW("unknown mixture mode '", s, "' (expected mean, weighted or geometric)");
}

void ChoiceStats::resize(int64_t rows, int maxChoices) {
  letterProbs.assign(rows * maxChoices, 0.f);
  choiceProbs.assign(rows * maxChoices, 0.f);
  letterMass.assign(rows, 0.f);
  entropy.assign(rows, 0.f);
  prediction.assign(rows, 0);
  vocabChoice.assign(rows, -1);
}

namespace {
void finalize(const float* dist, int64_t rows, int64_t vocab, const int32_t* tokens, int choices, int maxChoices,
              ChoiceStats& out) {
  out.resize(rows, maxChoices);
  kernels::finalizeChoicesCpu(dist, rows, vocab, tokens, choices, maxChoices, out.letterProbs.data(),
                              out.choiceProbs.data(), out.letterMass.data(), out.prediction.data(),
                              out.vocabChoice.data(), out.entropy.data());
}

}  // namespace

void choiceEntropy(ChoiceStats& s, int64_t rows, int choices, int maxChoices) {
  for (int64_t r = 0; r < rows; ++r) {
    double h = 0;
    for (int c = 0; c < choices; ++c) {
      const double q = s.choiceProbs[r * maxChoices + c];
      if (q > 0) h -= q * std::log(q);
    }
    s.entropy[r] = static_cast<float>(h);
  }
}

void computeMixture(Communicator& group, const MixtureSpec& spec, const float* logits, int64_t rows, int64_t vocab,
                    const std::vector<int32_t>& letterTokens, int choices, const std::vector<float>& weights,
                    int expertIndex, ChoiceStats& mine, ChoiceStats& mixture) {
  const int E = spec.experts, C = spec.maxChoices;
  MOE_CHECK(choices >= 2 && choices <= C, "mixture: ", choices, " choices, room for ", C);
  MOE_CHECK(static_cast<int>(letterTokens.size()) >= choices, "mixture: ", letterTokens.size(),
            " letter tokens for ", choices, " choices");
  MOE_CHECK(static_cast<int64_t>(weights.size()) == rows * E, "mixture: weights has ", weights.size(),
            " values, expected ", rows * E);
  MOE_CHECK(expertIndex >= 0 && expertIndex < E && group.size() == E, "mixture: expert ", expertIndex, " of ", E,
            " in a group of ", group.size());
  std::vector<float> w(rows);
  for (int64_t r = 0; r < rows; ++r) w[r] = weights[r * E + expertIndex];

  // This expert's own distribution and statistics.
  std::vector<float> probs(rows * vocab);
  kernels::weightedSoftmaxCpu(logits, rows, vocab, spec.temperature, nullptr, probs.data(), nullptr, nullptr);
  finalize(probs.data(), rows, vocab, letterTokens.data(), choices, C, mine);

  if (spec.fullVocabulary) {
    std::vector<float> contrib(rows * vocab);
    if (spec.mode == MixtureMode::Geometric) {
      // From the logits, not log(probs): the tail of the distribution would underflow.
      kernels::weightedLogSoftmaxCpu(logits, rows, vocab, spec.temperature, w.data(), contrib.data());
      group.allreduceSum(contrib.data(), contrib.size());
      std::vector<float> dist(rows * vocab);
      kernels::weightedSoftmaxCpu(contrib.data(), rows, vocab, 1.0f, nullptr, dist.data(), nullptr, nullptr);
      finalize(dist.data(), rows, vocab, letterTokens.data(), choices, C, mixture);
    } else {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t v = 0; v < vocab; ++v) contrib[r * vocab + v] = w[r] * probs[r * vocab + v];
      group.allreduceSum(contrib.data(), contrib.size());
      finalize(contrib.data(), rows, vocab, letterTokens.data(), choices, C, mixture);
    }
    return;
  }

  // Answer-letter mixture: [B, choices] per expert, identity token map afterwards.
  std::vector<float> contrib(rows * choices);
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < choices; ++c) {
      if (spec.mode == MixtureMode::Geometric) {
        const double q = std::max(static_cast<double>(mine.choiceProbs[r * C + c]), static_cast<double>(FLT_MIN));
        contrib[r * choices + c] = static_cast<float>(w[r] * std::log(q));
      } else {
        contrib[r * choices + c] = w[r] * mine.letterProbs[r * C + c];
      }
    }
  group.allreduceSum(contrib.data(), contrib.size());
  std::vector<int32_t> identity(choices);
  for (int c = 0; c < choices; ++c) identity[c] = c;
  if (spec.mode == MixtureMode::Geometric) {
    std::vector<float> dist(rows * choices);
    kernels::weightedSoftmaxCpu(contrib.data(), rows, choices, 1.0f, nullptr, dist.data(), nullptr, nullptr);
    finalize(dist.data(), rows, choices, identity.data(), choices, C, mixture);
  } else {
    finalize(contrib.data(), rows, choices, identity.data(), choices, C, mixture);
  }
  choiceEntropy(mixture, rows, choices, C);
  // Over the letters alone there is no vocabulary argmax to score.
  for (int64_t r = 0; r < rows; ++r) mixture.vocabChoice[r] = -1;
}

}  // namespace moe
