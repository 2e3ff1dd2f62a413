// Gate policies: per-question expert weights [B, E] from per-question inputs, as pure functions.
//
// The job calls gateWeights() on every rank of a group with the same allgathered inputs, so every
// rank computes the same weights without another collective; `moe-dist combine` calls it on the
// values a results file stores, so an offline recombination gives the online numbers. Policies
// (GateConfig::policy, common/gate_config.h), for question b and expert e:
//   uniform     w = 1/E
//   static      w = weights_e / sum (gate.weights, else the run's --weights, else uniform)
//   table       w = row_e / sum, row = table[category(b) or subject(b)] (`by`), else `default`
//   calibrated  as table (the job fits the table first: coordinator/calibrate.h)
//   entropy     w = softmax_e(-entropy[b, e] / T)   (lower entropy, more weight)
//   router      w = softmax_e(score[b, e] / T)      (cosine to the expert's prompt centroid)
//   retrieval   w = softmax_e(score[b, e] / T)      (mean cosine to the expert's nearest exemplars)
// then top_k (k >= 1 and < E): keep the k largest weights of each row (ties: the lower expert
// index), zero the rest, renormalise. For the softmax policies this is kernels::gateTopKCpu's
// softmax over the top k scores, which is the same thing. Every row sums to 1.
// Torch-free and MPI-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/gate_config.h"

namespace moe {

struct GateInputs {
  int64_t rows = 0;
  int experts = 0;
  std::vector<std::string> subjects;    // [B]
  std::vector<std::string> categories;  // [B]
  std::vector<float> entropy;           // [B * E] nats, each expert's own distribution (entropy policy)
  std::vector<float> routerScores;      // [B * E] router or retrieval scores (gate_scores)
};

// Weights [B * E], row-major. `runWeights` are the run's static --weights (empty: uniform).
// Throws moe::Error naming what is missing (a table key without a default, absent inputs...).
std::vector<float> gateWeights(const GateConfig& gate, const GateInputs& in, const std::vector<double>& runWeights);

// Keeps the k largest values of each row of w [rows * E] (ties: lower index), zeroes the rest and
// renormalises each row to sum 1. k <= 0 or k >= E only renormalises.
void keepTopK(float* w, int64_t rows, int experts, int k);

// The expert with the largest weight in a row (ties: the lower index).
int topExpert(const float* w, int experts);

// Cosine similarity of two vectors (0 when either is zero), in double.
double cosine(const float* a, const float* b, int64_t n);

}  // namespace moe
