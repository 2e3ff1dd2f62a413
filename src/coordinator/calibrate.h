// Calibrated gates: per-category (or per-subject) expert weights fitted on a labelled run.
//
// `moe-dist calibrate VAL.h5 --output table.yaml [--by category|subject] [--gate-temperature T]`
// reads a results file of a labelled split (val or dev: a run of the same experts, any mixture),
// and for each category (or subject) k and expert e computes the smoothed accuracy
//   a[k, e] = (correct[k, e] + 1) / (n[k] + 2)          (add-one: no key is ever all-or-nothing)
// under the file's scoring, and the weights
//   w[k, :] = softmax_e(a[k, e] / T)
// (small T: the best expert of the key takes nearly everything; large T: towards uniform). The
// `default` row is the same over all the file's questions, for keys the file has no question of.
// The output is a `gate:` section (policy table) that `--config table.yaml`, or `table_file:` in
// another config, uses as it is; it records the expert names and the file, split and data it was
// fitted on. The fit never sees the split being evaluated: a run refuses a table fitted on its
// own split of its own data (resolveGate), and `policy: calibrated` with `calibration_file` fits
// in the job, with the same check, before the first batch.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/gate_config.h"
#include "coordinator/results.h"

namespace moe {

// The fitted gate (policy "table", by/table/default/experts/fitted_on set; temperature T).
GateConfig fitCalibratedGate(const ResultsFile& file, const std::string& by, double temperature);

// The table file calibrate writes: comment lines on the fit, then gateYaml(gate).
std::string calibratedTableYaml(const GateConfig& gate, const ResultsFile& file);

// The gate as a run evaluating `split` of `dataRoot` with these experts uses it: policy
// calibrated with a calibration_file gets its table fitted; a table's expert names must match;
// a table fitted on the evaluated split of the same data is refused; retrieval exemplar files are
// read and inlined (use rows of another split than the evaluated one: dev or val).
// `offline`: for moe-dist combine (validateGate's offline).
GateConfig resolveGate(const GateConfig& gate, const std::vector<std::string>& experts, const std::string& split,
                       const std::string& dataRoot, bool offline = false);

// The calibrate command; returns the exit status.
int runCalibrateCommand(const RunConfig& cfg);

}  // namespace moe
