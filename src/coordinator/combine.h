// `moe-dist combine RUN.h5 --config GATE.yaml --output NEW.h5`: evaluate once, combine many ways.
//
// The forward passes are the expensive part of a run; the weights are cheap. combine recomputes a
// run's mixture with other weights from what the file stores per expert and question, with no
// model and no MPI, and writes a new results file (the same layout, root attribute
// `combined_from` naming the source) whose numbers are those of an online run with that
// configuration:
//   weights   a gate (any policy: entropy from expert_entropy, router from gate_scores, tables
//             from the subject table, calibrated fitted on another file) or the static weights
//             of --mode/--weights, computed by the same functions as the job (worker/gate.h);
//   mixture   mean/weighted: mixture_letter_probs = sum_e w_e expert_letter_probs — exact in both
//             mixture spaces, since the letter tokens are tokens of the vocabulary; geometric over
//             the answer letters: softmax_c(sum_e w_e log expert_choice_probs), as the job does.
// What the stored values cannot give is refused with the reason: geometric pooling over the full
// vocabulary (it needs every token's log-probability), a router gate on a file without router
// scores (or scores from other prompts), and vocab scoring of a soft full-vocabulary mixture (its
// whole-vocabulary argmax). The full-vocabulary mixture's entropy and vocabulary argmax are known
// only where a row's weights are one-hot (the mixture is that expert); elsewhere they are written
// as NaN and -1.
#pragma once

#include "common/config.h"
#include "coordinator/results.h"

namespace moe {

// The combined file's header and rows (not yet written). `cfg` gives the gate, and --mode,
// --weights and --scoring when they were given (cfg.givenOptions); otherwise the source's.
ResultsFile combineResults(const ResultsFile& source, const RunConfig& cfg);

// The combine command: reads positional[0], writes cfg.output, prints the report.
int runCombineCommand(const RunConfig& cfg);

}  // namespace moe
