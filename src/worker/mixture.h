// The mixture step of one batch, on every rank of a replica group.
//
// Each rank holds its expert's last-token logits [B, V]. It computes its own answer statistics,
// then its weighted contribution, which the group's Communicator sums (the all-reduce), and every
// rank finalizes the same mixture statistics:
//   full vocabulary (all experts share one vocabulary):
//     mean / weighted: sum_e w_e softmax(z_e / T)          (a distribution over the vocabulary)
//     geometric:       softmax(sum_e w_e log_softmax(z_e / T))
//   answer letters (vocabularies differ): each expert's letter probabilities, mapped per expert
//     through its own letter tokens, [B, C]:
//     mean / weighted: sum_e w_e p_e(letter_c)             (renormalised over choices after)
//     geometric:       softmax_c(sum_e w_e log q_e(c)), q_e the expert's choice-renormalised probs
// Weights are per question (w[b, e], each row summing to 1): static weights are the same row for
// every question; a gate writes its own rows. Every rank of the group must call this with the
// same B, choices, weights and spec (the Communicator contract).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace moe {

enum class MixtureMode { Mean, Weighted, Geometric };
MixtureMode parseMixtureMode(const std::string& s);

struct MixtureSpec {
  MixtureMode mode = MixtureMode::Mean;
  bool fullVocabulary = true;
  int experts = 1;
  int maxChoices = 4;
  float temperature = 1.0f;
};

// Answer statistics of one distribution source (an expert or the mixture) for a batch; layouts as
// in kernels/finalize.h (rows of maxChoices, NaN past the batch's choices).
struct ChoiceStats {
  std::vector<float> letterProbs, choiceProbs;  // [B * maxChoices]
  std::vector<float> letterMass, entropy;       // [B]
  std::vector<int32_t> prediction, vocabChoice; // [B]
  void resize(int64_t rows, int maxChoices);
};

// s.entropy[r] = entropy (nats) of row r's choice distribution s.choiceProbs[r, :choices]
// (rows of maxChoices); the answer-letter mixture's entropy, host side of both mixture paths.
void choiceEntropy(ChoiceStats& s, int64_t rows, int choices, int maxChoices);

// `expertIndex` selects this rank's column of `weights` [B * experts].
void computeMixture(Communicator& group, const MixtureSpec& spec, const float* logits, int64_t rows, int64_t vocab,
                    const std::vector<int32_t>& letterTokens, int choices, const std::vector<float>& weights,
                    int expertIndex, ChoiceStats& mine, ChoiceStats& mixture);

}  // namespace moe
