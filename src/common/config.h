// Run configuration: defaults, then a YAML file (--config), then command-line options.
//
// Every option has one definition in the option table (config.cpp): its command-line name
// (`--batch-size`), its YAML key (`batch_size`; `batch-size` is accepted too), its type and help.
// The same setter parses both sources, so a wrong type reads the same from either, naming the
// key and, for YAML, the file and line. Unknown keys and options are errors. The one nested
// section, `gate:`, has its own parser (common/gate_config.h); --gate, --gate-top-k,
// --gate-temperature, --gate-calibration and --by are its command-line shortcuts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/gate_config.h"

namespace moe {

struct RunConfig {
  // Experts and mixture.
  std::vector<std::string> models;
  std::vector<double> weights;      // one per model (mode weighted/geometric); empty = uniform
  std::string mode = "mean";        // mean | weighted | geometric
  std::string scoring = "letters";  // letters | vocab
  GateConfig gate;                  // per-question weights (`gate:` section; common/gate_config.h)
  // Data and prompts.
  std::string data;                     // MMLU root: <root>/{dev,val,test} or <root>/data/...
  std::string split = "test";           // test | val | dev
  std::vector<std::string> subjects;    // empty = all subjects found
  int shots = 5;
  std::string promptStyle = "original";  // original | harness
  int64_t limit = 0;                     // questions per subject; 0 = all
  int maxContext = 0;                    // tokens; 0 = the model's own limit
  // Execution.
  int batchSize = 8;
  std::string device = "cpu";   // cpu | cuda
  std::string dtype = "auto";   // auto | fp32 | bf16 | fp16 (auto: fp32 on cpu, bf16 on cuda)
  int threads = 0;              // intra-op threads per rank; 0 = library default
  std::string mixtureOn = "auto";  // auto (device mixture where possible, docs/gpu.md) | host
  bool noPrefixCache = false;   // compute every prompt whole (no shared-prefix key/value cache)
  // Output.
  std::string output;
  bool resume = false;
  bool overwrite = false;
  // Command-specific (not read from YAML).
  std::string configFile;
  bool json = false;             // prompts, tokenize
  std::string format = "text";   // report: text | markdown | csv | json
  std::string model;             // tokenize --model
  std::string text;              // tokenize --text
  std::string textFile;          // tokenize --file
  std::vector<std::string> positional;  // arguments that are not options (e.g. report FILE)
  std::vector<std::string> givenOptions;  // names of the options set by the command line or --config
};

// Parses argv[first..argc): loads --config first (wherever it appears), then applies the other
// options in order. Throws moe::Error naming the option or key on any problem.
RunConfig parseCommandLine(int argc, const char* const* argv, int first = 1);

// Applies a YAML file's keys to `cfg` (used by parseCommandLine; exposed for tests).
void applyYamlFile(RunConfig& cfg, const std::string& path);
void applyYamlString(RunConfig& cfg, const std::string& yaml, const std::string& sourceName);

// The resolved configuration as YAML (every YAML key), as recorded with results.
std::string toYaml(const RunConfig& cfg);

// The option reference for --help.
std::string optionsHelp();

// "original": `about  abstract algebra` (MMLU's own script); "harness": lm-evaluation-harness.
bool isValidPromptStyle(const std::string& s);

}  // namespace moe
