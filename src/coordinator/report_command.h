// `moe-dist report FILE [--format text|markdown|csv|json] [--scoring letters|vocab]`: the accuracy
// table of a results file (each expert, the mixture, the oracle; overall, per category, per
// subject), the mixture-vs-best-expert comparison and the run's facts. Computed from the
// per-question rows, so it works on a partial file; --scoring re-scores (default: the run's own).
#pragma once

#include <cstdio>

#include "common/config.h"

namespace moe {

// Writes to `out`; returns the process exit status (0). Errors are thrown as moe::Error.
int runReportCommand(const RunConfig& cfg, std::FILE* out);
int runReportCommand(const RunConfig& cfg);  // to stdout

}  // namespace moe
