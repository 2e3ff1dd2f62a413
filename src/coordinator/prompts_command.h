// `moe-dist prompts`: prints the exact prompts a run would evaluate, for checking a data set and a
// prompt style without loading a model.
//   plain:  a separator line "### subject=S split=T index=I gold=X shots=K style=P" before each prompt
//   --json: one JSON array of {subject, split, index, gold, shots, prompt}
// Prompts are not fitted to a context length here (no tokenizer): shots are min(--shots, dev rows).
#pragma once

#include <cstdio>

#include "common/config.h"

namespace moe {

// Writes to `out`; returns the process exit status (0). Errors are thrown as moe::Error.
int runPromptsCommand(const RunConfig& cfg, std::FILE* out);
int runPromptsCommand(const RunConfig& cfg);  // to stdout

}  // namespace moe
