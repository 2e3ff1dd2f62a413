#include "coordinator/prompts_command.h"

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"

namespace moe {
namespace {

void write(std::FILE* out, const std::string& s) {
  MOE_CHECK(std::fwrite(s.data(), 1, s.size(), out) == s.size(), "cannot write the prompts to the output");
}

}  // namespace

int runPromptsCommand(const RunConfig& cfg, std::FILE* out) {
  const PromptStyle style = parsePromptStyle(cfg.promptStyle);
  const MmluDataset ds = loadMmlu(cfg);
  nlohmann::json all = nlohmann::json::array();
  for (const SubjectData& subject : ds.subjects) {
    for (const Question& q : subject.eval) {
      const Prompt p = buildPrompt(subject, q, cfg.shots, style);
      const std::string gold(1, choiceLetter(q.gold));
      if (cfg.json) {
        all.push_back({{"subject", q.subject}, {"split", q.split}, {"index", q.index}, {"gold", gold},
                       {"shots", p.shots}, {"prompt", p.text()}});
      } else {
        write(out, str("### subject=", q.subject, " split=", q.split, " index=", q.index, " gold=", gold,
                       " shots=", p.shots, " style=", promptStyleName(style), "\n", p.text(), "\n"));
      }
    }
  }
  if (cfg.json) write(out, all.dump(2) + "\n");
  MOE_CHECK(std::fflush(out) == 0, "cannot write the prompts to the output");
  return 0;
}

int runPromptsCommand(const RunConfig& cfg) { return runPromptsCommand(cfg, stdout); }

}  // namespace moe
