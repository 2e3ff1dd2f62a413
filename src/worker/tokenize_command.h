// `moe-dist tokenize --model DIR (--text T | --file F) [--json]`: shows how a model's tokenizer
// splits text. For --text, the one text; for --file, each line of the file (without its newline).
// Plain output, per input:   ids: 1 15043 3186
//                            pieces: "<s>" " Hello" " world"
// (pieces are the readable text of each token, JSON-quoted so that spaces show); with --json one
// JSON array per input: [{"id": 1, "piece": "<s>"}, ...]. Ids include the special tokens
// (BOS etc.) that the tokenizer adds to a prompt.
#pragma once

#include "common/config.h"

namespace moe {

int runTokenizeCommand(const RunConfig& cfg);

}  // namespace moe
