// The accuracy report: what `moe-dist report run.h5` prints and what ResultsWriter::finish()
// stores in the file's `summary` group. Both come from summarize(), which works from the
// per-question rows alone, so a partial file (a killed or still running job) gets a report too,
// and either scoring can be applied after the fact:
//   letters: a predictor's answer is the argmax of its choice probabilities (ties: first choice);
//   vocab:   its answer is the choice whose letter token is the argmax of the whole vocabulary
//            (expert_vocab_choice / mixture_vocab_choice; -1, never correct, when it is no letter).
// When the requested scoring is the run's own, the stored prediction/correct columns are used
// as written. Gated runs get a routing section: per expert, the mean weight and the share of
// questions where it had the largest weight, and the accuracy of that top-1 choice against the
// oracle (any expert right), overall, per category and per subject.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/results.h"
#include "coordinator/stats.h"

namespace moe {

// One table row: a cell per column (each expert, then "mixture", then "oracle").
struct AccuracyRow {
  std::string name;  // "micro", "macro", a category or a subject
  int64_t n = 0;     // questions
  int groups = 0;    // macro row: subjects averaged
  std::vector<stats::Accuracy> cells;  // macro row: value/se are the macro average and its error
};

// The mixture against its best expert (highest micro accuracy; ties: the first).
struct MixtureComparison {
  int bestExpert = -1;
  std::string bestExpertName;
  stats::Accuracy mixture, expert;
  stats::BootstrapCi ci;  // of mixture accuracy - expert accuracy
  stats::McNemar test;    // b: mixture right and expert wrong; c: the reverse
};

// Gated runs: how the gate routed, over a group of questions (overall, a category, a subject).
struct RoutingRow {
  std::string name;
  int64_t n = 0;
  std::vector<double> meanWeight;  // [E] mean of the weights
  std::vector<double> topShare;    // [E] fraction of questions whose largest weight (ties: lower index) is e's
  stats::Accuracy top1;            // the gate's top-1 expert's answer right
  stats::Accuracy oracle;          // any expert right
};

struct RoutingSummary {
  bool gated = false;  // the file's gate_policy is not "none"
  std::string policy;
  RoutingRow overall;
  std::vector<RoutingRow> categories, subjects;  // as RunSummary's
};

// The run's costs (the file's `ranks` and `timing` groups): per rank, summed over the run's
// segments (the run and each --resume), and the straggler.
struct CostSummary {
  bool recorded = false;        // the file has cost rows (files before cost accounting do not)
  int segments = 0;             // distinct segments with cost rows
  std::vector<RankCost> ranks;  // one per rank number, in rank order; host/device/model of its last segment
  int straggler = -1;           // index into ranks: the most forward seconds (ties: the least idle); -1 if none
  // Per-batch means over the `timing` rows (NaN without rows); forward and tokenize: the slowest expert's.
  int64_t batches = 0;
  double meanTokenize = 0, meanForward = 0, meanReduce = 0, meanWrite = 0, meanWait = 0, meanBatch = 0;
};
// Idle time of a rank: seconds in collectives plus seconds waiting on the coordinator.
double idleSeconds(const RankCost& c);
CostSummary summarizeCosts(const ResultsFile& file);

struct RunSummary {
  std::string scoring;                // the scoring applied
  std::vector<std::string> columns;   // experts..., "mixture", "oracle"
  int64_t questions = 0;
  AccuracyRow micro, macro;
  std::vector<AccuracyRow> categories;  // MMLU's four in paper order, then any other; only n > 0
  std::vector<AccuracyRow> subjects;    // subject-table order; only n > 0
  MixtureComparison comparison;
  std::vector<double> expertLetterMass;  // mean probability mass on the answer letters, per expert
  double mixtureLetterMass = 0;
  RoutingSummary routing;
  CostSummary costs;
};

// Computes the summary with `scoring` ("" = the file's own scoring).
RunSummary summarize(const ResultsFile& file, const std::string& scoring = "");

// Renders the report: format text | markdown | csv | json.
std::string formatReport(const ResultsFile& file, const RunSummary& summary, const std::string& format);
// The same with the file's own scoring.
std::string formatReport(const ResultsFile& file, const std::string& format);

}  // namespace moe
