// Synthetic results for the results-file, report and h5py tests: a few subjects (one per MMLU
// category, plus a 3-choice subject outside the 57 that exercises the NaN-padded columns), 2-3
// experts, deterministic pseudo-random probabilities built the way the mixture step builds them
// (mean/weighted: mixture letter probs = sum_e w_e * expert letter probs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/results.h"

namespace moe::testing {

struct SyntheticOptions {
  int experts = 3;
  std::string mode = "mean";                    // mean | weighted
  std::string scoring = "letters";              // letters | vocab
  std::string mixtureSpace = "full-vocabulary";
  uint64_t seed = 7;
};

ResultsHeader syntheticHeader(const SyntheticOptions& o);
// Every row of the run, ordered by subject then index (32 rows; the last 5 have 3 choices).
std::vector<QuestionResult> syntheticRows(const SyntheticOptions& o);

}  // namespace moe::testing
