// Gate configuration: how a mixture picks per-question expert weights (the `gate:` section).
//
//   gate:
//     policy: entropy          # uniform | static | table | calibrated | entropy | router | retrieval
//     top_k: 1                 # keep the k largest weights per question, renormalise (0: all)
//     temperature: 0.5         # softmax temperature (entropy, router; calibrated's fit)
//     weights: [1, 2, 1]       # static: one per expert (default: the top-level `weights`)
//     by: category             # table / calibrated: category | subject
//     table: {STEM: [0.6, 0.2, 0.2], humanities: [0.1, 0.8, 0.1]}
//     default: [1, 1, 1]       # table: rows for keys not in `table` (absent: such a key is an error)
//     table_file: table.yaml   # table: by/table/default/experts/fitted_on from a `moe-dist calibrate` file
//     experts: [a, b, c]       # table: the expert names its columns were made for (checked when given)
//     calibration_file: val.h5 # calibrated: a labelled run's results file to fit the table on
//     retrieval:               # Retrieval of Experts (policy retrieval); scores are stored
//       neighbours: 3
//       experts:               # one entry per model: exemplars and/or exemplars_file
//         - exemplars_file: data/mmlu/dev/anatomy_dev.csv
//     router:                  # per-expert prompt centroids (mergekit-moe style); scores are stored
//       mode: hidden           # hidden | cheap_embed | random
//       seed: 0                # random
//       experts:               # one entry per model, in model order
//         - positive_prompts: ["..."]
//           negative_prompts: ["..."]
//
// The CLI shortcuts --gate POLICY, --gate-top-k K, --gate-temperature T and --gate-calibration
// FILE set the same fields. No `gate:` (policy "") keeps the static mixture of --mode/--weights.
// Every problem names the file, line and key. canonicalYaml() is what a results file records:
// the resolved gate (a table_file's content inlined), so resume compares values, not file names.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace moe {

struct RouterPrompts {
  std::vector<std::string> positive, negative;
};

struct RouterConfig {
  std::string mode = "hidden";  // hidden | cheap_embed | random
  uint64_t seed = 0;
  std::vector<RouterPrompts> experts;  // one per model
  bool configured() const { return !experts.empty() || mode == "random"; }
};

// Retrieval of Experts: each expert's exemplars (texts, or MMLU-format CSV rows formatted as the
// question part of a prompt); a question's score per expert is the mean cosine of the top
// `neighbours` exemplars to the question, both as the expert's final hidden state of the zero-shot
// question text. Files are read when the run starts (coordinator/calibrate.h resolveGate) and the
// texts inlined, so the recorded gate holds what the scores came from.
struct RetrievalExpert {
  std::vector<std::string> exemplars;
  std::vector<std::string> files;  // exemplars_file: .csv (MMLU rows) or text (one exemplar per line)
};
struct RetrievalConfig {
  int neighbours = 1;
  std::vector<RetrievalExpert> experts;  // one per model
  bool configured() const { return !experts.empty(); }
};

struct GateConfig {
  std::string policy;  // "" (none) | uniform | static | table | calibrated | entropy | router | retrieval
  int topK = 0;        // 0: every expert
  double temperature = 1.0;
  std::vector<double> weights;  // static
  std::string by = "category";  // table, calibrated: category | subject
  std::map<std::string, std::vector<double>> table;
  std::vector<double> tableDefault;
  std::vector<std::string> tableExperts;  // names the table's columns were made for (optional)
  std::string tableFile;                  // where `table` was read from (informational)
  std::string fittedOn;                   // calibrated tables: "FILE (split S, data D)"
  std::string fittedSplit, fittedDataRoot;
  std::string calibrationFile;  // calibrated
  RouterConfig router;
  RetrievalConfig retrieval;
  std::string origin;  // "FILE:LINE" of the `gate:` section it was read from (messages only)

  bool enabled() const { return !policy.empty(); }
};

// Policies a gate may name.
bool isGatePolicy(const std::string& s);

// Applies a `gate:` mapping (merging into `gate`: later keys override). `source` is the file name.
void applyGateYaml(GateConfig& gate, const YAML::Node& node, const std::string& source);
// The same from YAML text whose top level is either a `gate:` mapping or the gate's keys.
void applyGateYamlString(GateConfig& gate, const std::string& yaml, const std::string& source);
// Checks the gate for `experts` models (0: skip the count checks). Throws naming the key.
// `offline` (moe-dist combine): a router policy may use a file's stored scores without prompts.
void validateGate(const GateConfig& gate, size_t experts, bool offline = false);

// The gate as a YAML block (`gate:` and its keys, every value in full precision); "" when no gate.
std::string gateYaml(const GateConfig& gate);
// The router section alone (empty when not configured): what the stored router scores depend on.
std::string routerYaml(const RouterConfig& router);
// The retrieval section alone (empty when not configured), the same for retrieval scores.
std::string retrievalYaml(const RetrievalConfig& retrieval);

}  // namespace moe
