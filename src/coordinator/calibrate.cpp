#include "coordinator/calibrate.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include "common/error.h"
#include "common/log.h"
#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"

namespace moe {
namespace {

// softmax_e((correct_e + 1) / (n + 2) / T), in double.
std::vector<double> fitRow(const std::vector<int64_t>& correct, int64_t n, double temperature) {
  std::vector<double> a(correct.size());
  double top = -1e300;
  for (size_t e = 0; e < correct.size(); ++e) {
    a[e] = (static_cast<double>(correct[e]) + 1.0) / (static_cast<double>(n) + 2.0) / temperature;
    top = std::max(top, a[e]);
  }
  double sum = 0;
  for (double& x : a) sum += x = std::exp(x - top);
  for (double& x : a) x /= sum;
  return a;
}

std::string canonicalPath(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string listText(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

// A retrieval exemplars file: MMLU-format CSV rows (.csv) as the question part of a prompt, or
// one exemplar per non-empty line of text.
std::vector<std::string> readExemplars(const std::string& path) {
  std::vector<std::string> out;
  const bool csv = path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0;
  if (csv) {
    for (const Question& q : readMmluFile(path, "exemplars", "exemplars"))
      out.push_back(formatQuestion(q, PromptStyle::Original, false));
  } else {
    std::ifstream f(path);
    MOE_CHECK(f, "gate retrieval: cannot read exemplars file '", path, "'");
    std::string line;
    while (std::getline(f, line))
      if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  }
  MOE_CHECK(!out.empty(), "gate retrieval: exemplars file '", path, "' has no exemplars");
  return out;
}

}  // namespace

GateConfig fitCalibratedGate(const ResultsFile& file, const std::string& by, double temperature) {
  MOE_CHECK(by == "category" || by == "subject", "calibrate: --by must be category or subject, got '", by, "'");
  MOE_CHECK(temperature > 0 && std::isfinite(temperature), "calibrate: temperature must be > 0, got ", temperature);
  const ResultsHeader& h = file.header;
  MOE_CHECK(!file.rows.empty(), "calibrate: ", file.path, " has no questions to fit on");
  const size_t E = h.experts.size();
  std::map<std::string, std::string> categoryOf;
  for (const auto& s : h.subjects) categoryOf[s.subject] = s.category;
  std::map<std::string, std::vector<int64_t>> correct;
  std::map<std::string, int64_t> n;
  std::vector<int64_t> allCorrect(E, 0);
  for (const auto& r : file.rows) {
    const std::string key = by == "subject" ? r.subject : categoryOf.at(r.subject);
    auto& c = correct[key];
    c.resize(E, 0);
    ++n[key];
    for (size_t e = 0; e < E; ++e) {
      c[e] += r.expertCorrect[e];
      allCorrect[e] += r.expertCorrect[e];
    }
  }
  GateConfig g;
  g.policy = "table";
  g.by = by;
  g.temperature = temperature;
  g.tableExperts = h.experts;
  for (const auto& [key, c] : correct) g.table[key] = fitRow(c, n[key], temperature);
  g.tableDefault = fitRow(allCorrect, static_cast<int64_t>(file.rows.size()), temperature);
  g.fittedOn = file.path;
  g.fittedSplit = h.split;
  g.fittedDataRoot = h.dataRoot;
  return g;
}

std::string calibratedTableYaml(const GateConfig& gate, const ResultsFile& file) {
  const ResultsHeader& h = file.header;
  std::string out;
  out += "# Expert weights per " + gate.by + ", fitted by moe-dist calibrate on " + file.path + "\n";
  out += str("# (split ", h.split, " of ", h.dataRoot, ", ", file.rows.size(), " questions, scoring ", h.scoring,
             ", experts ", listText(h.experts), ").\n");
  out += str("# weights = softmax over experts of ((correct + 1) / (n + 2)) / T, T = ", gate.temperature,
             "; `default` is the fit over all questions.\n");
  out += "# Use it with --config THIS_FILE, or `table_file: THIS_FILE` in a gate section. A run refuses it when it\n"
         "# evaluates the split it was fitted on.\n";
  return out + gateYaml(gate);
}

GateConfig resolveGate(const GateConfig& gateIn, const std::vector<std::string>& experts, const std::string& split,
                       const std::string& dataRoot, bool offline) {
  GateConfig gate = gateIn;
  if (!gate.enabled()) return gate;
  auto sameData = [&](const std::string& fittedSplit, const std::string& fittedRoot) {
    return fittedSplit == split && canonicalPath(fittedRoot) == canonicalPath(dataRoot);
  };
  if (gate.policy == "calibrated" && !gate.calibrationFile.empty()) {
    const ResultsFile val = readResults(gate.calibrationFile);
    MOE_CHECK(val.header.experts.size() == experts.size(), "gate calibrated: ", gate.calibrationFile, " has ",
              val.header.experts.size(), " experts ", listText(val.header.experts), ", this run has ",
              experts.size(), " ", listText(experts));
    MOE_CHECK(!sameData(val.header.split, val.header.dataRoot), "gate calibrated: ", gate.calibrationFile,
              " evaluated the ", split, " split of ", dataRoot,
              ", the split this run evaluates: fit on another split (val or dev) so the weights never see the "
              "questions they are scored on");
    const GateConfig fit = fitCalibratedGate(val, gate.by, gate.temperature);
    gate.table = fit.table;
    gate.tableDefault = fit.tableDefault;
    gate.tableExperts = fit.tableExperts;
    gate.fittedOn = fit.fittedOn;
    gate.fittedSplit = fit.fittedSplit;
    gate.fittedDataRoot = fit.fittedDataRoot;
    gate.calibrationFile.clear();  // the fitted values are what the run records
    logInfo("gate calibrated: weights per ", gate.by, " fitted on ", fit.fittedOn, " (split ", fit.fittedSplit, ", ",
            val.rows.size(), " questions)");
  }
  for (auto& e : gate.retrieval.experts) {
    for (const auto& file : e.files) {
      const std::vector<std::string> texts = readExemplars(file);
      e.exemplars.insert(e.exemplars.end(), texts.begin(), texts.end());
    }
    e.files.clear();  // inlined: the recorded gate holds the texts the scores come from
  }
  if (gate.policy == "table" || gate.policy == "calibrated") {
    MOE_CHECK(gate.tableExperts.empty() || gate.tableExperts == experts, "gate ", gate.policy,
              ": the table was made for experts ", listText(gate.tableExperts), ", this run has ", listText(experts));
    MOE_CHECK(gate.fittedSplit.empty() || !sameData(gate.fittedSplit, gate.fittedDataRoot), "gate ", gate.policy,
              ": the table was fitted on ", gate.fittedOn, ", the ", split, " split of ", dataRoot,
              ", which this run evaluates: fit it on another split (val or dev)");
  }
  validateGate(gate, experts.size(), offline);
  return gate;
}

int runCalibrateCommand(const RunConfig& cfg) {
  MOE_CHECK(cfg.positional.size() == 1,
            "calibrate: expected one results FILE (moe-dist calibrate VAL.h5 --output table.yaml [--by category|subject] "
            "[--gate-temperature T]), got ",
            cfg.positional.size(), " arguments");
  MOE_CHECK(!cfg.output.empty(), "calibrate: pass --output TABLE.yaml");
  const ResultsFile file = readResults(cfg.positional[0]);
  if (!file.complete()) logWarn(file.path, " is a partial run: fitting on its ", file.rows.size(), " questions");
  const GateConfig gate = fitCalibratedGate(file, cfg.gate.by, cfg.gate.temperature);
  const std::string text = calibratedTableYaml(gate, file);
  std::ofstream out(cfg.output, std::ios::binary | std::ios::trunc);
  MOE_CHECK(out, "calibrate: cannot write ", cfg.output);
  out << text;
  out.close();
  MOE_CHECK(out, "calibrate: cannot write ", cfg.output);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace moe
