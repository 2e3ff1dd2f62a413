#include "coordinator/report_command.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "coordinator/report.h"
#include "coordinator/results.h"

namespace moe {

int runReportCommand(const RunConfig& cfg, std::FILE* out) {
  MOE_CHECK(cfg.positional.size() == 1, "report: expected one results FILE (moe-dist report FILE [--format F]), got ",
            cfg.positional.size(), " arguments");
  const auto& given = cfg.givenOptions;
  const bool scoringGiven = std::find(given.begin(), given.end(), "scoring") != given.end();
  const ResultsFile file = readResults(cfg.positional[0]);
  const RunSummary summary = summarize(file, scoringGiven ? cfg.scoring : std::string());
  const std::string text = formatReport(file, summary, cfg.format);
  MOE_CHECK(std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0,
            "report: cannot write the report to the output");
  return 0;
}

int runReportCommand(const RunConfig& cfg) { return runReportCommand(cfg, stdout); }

}  // namespace moe
