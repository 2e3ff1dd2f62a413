// moe-dist: the one binary. `moe-dist COMMAND [options]`; each command is a function taking the
// parsed configuration. Errors are moe::Error: printed with what and where, exit status 1.
// Commands that run under MPI end the whole job on an error (MpiSession::abortJob).
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/error.h"
#include "common/version.h"
#include "job/job.h"
#include "coordinator/calibrate.h"
#include "coordinator/combine.h"
#include "coordinator/prompts_command.h"
#include "coordinator/report_command.h"
#include "worker/tokenize_command.h"
#include "worker/torch/torch_runtime.h"

namespace {

struct Command {
  const char* name;
  const char* usage;
  const char* summary;
  std::function<int(const moe::RunConfig&)> run;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"tokenize", "tokenize --model DIR (--text T | --file F) [--json]",
       "token ids and pieces of a text (or of each line of a file) with the model's tokenizer",
       [](const moe::RunConfig& c) { return moe::runTokenizeCommand(c); }},
      {"prompts",
       "prompts --data DIR [--split test|val|dev] [--subjects a,b|all] [--shots K] [--prompt-style original|harness] "
       "[--limit N] [--json]",
       "print the exact few-shot prompts for the data set, without a model (checks data and prompt style)",
       [](const moe::RunConfig& c) { return moe::runPromptsCommand(c); }},
      {"report", "report FILE [--format text|markdown|csv|json] [--scoring letters|vocab]",
       "accuracy table of a results file: each expert, the mixture, the oracle (works on partial files)",
       [](const moe::RunConfig& c) { return moe::runReportCommand(c); }},
      {"combine",
       "combine RUN.h5 --output NEW.h5 [--config GATE.yaml] [--gate POLICY] [--gate-top-k K] [--gate-temperature T] "
       "[--mode mean|weighted|geometric] [--weights W...] [--scoring letters|vocab] [--overwrite]",
       "recompute a run's mixture with another gate or pooling from its stored per-expert values (no models, no MPI)",
       [](const moe::RunConfig& c) { return moe::runCombineCommand(c); }},
      {"calibrate", "calibrate VAL.h5 --output TABLE.yaml [--by category|subject] [--gate-temperature T]",
       "fit per-category (or per-subject) expert weights on a labelled run's results file, as a reusable gate table",
       [](const moe::RunConfig& c) { return moe::runCalibrateCommand(c); }},
  };
  return table;
}

void printHelp() {
  std::printf(
      "moe-dist %s: evaluate language models and their mixtures on MMLU, one MPI rank per expert.\n\n"
      "Usage:\n",
      MOE_VERSION);
  std::printf(
      "  mpirun -np N moe-dist [run] --models PATH... --data DIR --output FILE.h5 [options]\n"
      "      evaluate each expert and their mixture (N a multiple of the number of models: one rank per\n"
      "      expert and replica group); prints the report and writes every result to FILE.h5\n");
  for (const auto& c : commands()) std::printf("  moe-dist %s\n      %s\n", c.usage, c.summary);
  std::printf("  moe-dist --version\n\nOptions (also as YAML keys in --config files, snake_case):\n%s",
              moe::optionsHelp().c_str());
}

void printVersion() {
  std::printf("moe-dist %s\n%s\nCUDA kernels: %s, NCCL: %s\n", MOE_VERSION, moe::torchRuntimeInfo().c_str(),
              MOE_USE_CUDA ? "built" : "not built", MOE_USE_NCCL ? "built" : "not built");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
      printHelp();
      return argc < 2 ? 1 : 0;
    }
    if (!std::strcmp(argv[1], "--version")) {
      printVersion();
      return 0;
    }
    // The evaluation job: `moe-dist run --models ...`, or just `moe-dist --models ...`.
    const bool runByDefault = argv[1][0] == '-' && std::strcmp(argv[1], "--version") != 0;
    if (!std::strcmp(argv[1], "run") || runByDefault) {
      const int first = runByDefault ? 1 : 2;
      for (int i = first; i < argc; ++i)
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
          printHelp();
          return 0;
        }
      return moe::runJob(moe::parseCommandLine(argc, argv, first), &argc, &argv);
    }
    for (const auto& c : commands()) {
      if (std::strcmp(argv[1], c.name) != 0) continue;
      for (int i = 2; i < argc; ++i)
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
          std::printf("Usage: moe-dist %s\n  %s\n\nOptions:\n%s", c.usage, c.summary, moe::optionsHelp().c_str());
          return 0;
        }
      return c.run(moe::parseCommandLine(argc, argv, 2));
    }
    std::fprintf(stderr, "moe-dist: unknown command '%s' (see moe-dist --help)\n", argv[1]);
    return 2;
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe-dist: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe-dist: internal error: %s\n", e.what());
    return 3;
  }
}
