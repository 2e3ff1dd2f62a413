#include "coordinator/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "common/error.h"
#include "coordinator/categories.h"

namespace moe {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// argmax over the first `k` values (NaN never wins; ties: the first); -1 if all are NaN.
int argmaxChoice(const float* p, int k) {
  int best = -1;
  for (int i = 0; i < k; ++i)
    if (!std::isnan(p[i]) && (best < 0 || p[i] > p[best])) best = i;
  return best;
}

AccuracyRow makeRow(const std::string& name, const std::vector<int64_t>& correct, int64_t n) {
  AccuracyRow row;
  row.name = name;
  row.n = n;
  for (int64_t k : correct) row.cells.push_back(stats::accuracy(k, n));
  return row;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string percentCell(const stats::Accuracy& a) {
  if (std::isnan(a.value)) return "n/a";
  return fmt("%.1f", 100 * a.value) + " ± " + fmt("%.1f", 100 * a.se);
}

std::string signedPoints(double v) { return std::isnan(v) ? "n/a" : fmt("%+.1f", 100 * v); }

std::string joined(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string pValueText(double p) {
  if (std::isnan(p)) return "n/a";
  if (p < 1e-4) return fmt("%.2e", p);
  return fmt("%.4f", p);
}

// Labelled rows in report order.
struct TableRow {
  std::string section;  // overall | category | subject
  std::string label;
  const AccuracyRow* row;
};
std::vector<TableRow> tableRows(const RunSummary& s) {
  std::vector<TableRow> t;
  t.push_back({"overall", "overall (micro)", &s.micro});
  t.push_back({"overall", str("overall (macro, ", s.macro.groups, " subjects)"), &s.macro});
  for (const auto& r : s.categories) t.push_back({"category", r.name, &r});
  for (const auto& r : s.subjects) t.push_back({"subject", r.name, &r});
  return t;
}

// Header facts as (label, text) lines, shared by the text, markdown and csv renderings.
std::vector<std::pair<std::string, std::string>> facts(const ResultsFile& f, const RunSummary& s) {
  const ResultsHeader& h = f.header;
  std::vector<std::pair<std::string, std::string>> out;
  std::string status = f.complete()
                           ? str("complete, ", s.questions, " questions in ", s.subjects.size(), " subjects")
                           : str("PARTIAL (status '", h.status, "'): ", s.questions, " questions in ", s.subjects.size(),
                                 " subjects written so far; the job is running or was stopped (continue it with --resume)");
  out.push_back({"status", status});
  std::vector<std::string> models;
  for (size_t e = 0; e < h.models.size(); ++e)
    models.push_back(str(h.experts[e], " = ", h.models[e], " (", h.modelHashes[e], ")"));
  out.push_back({"models", joined(models, "; ")});
  std::string weights = "uniform";
  if (!h.weights.empty()) {
    std::vector<std::string> w;
    for (double x : h.weights) w.push_back(fmt("%g", x));
    weights = joined(w, ", ");
  }
  out.push_back({"mode", str(h.mode, " (weights: ", h.gatePolicy.empty() ? weights : "per question, from the gate",
                             ")")});
  if (!h.gatePolicy.empty())
    out.push_back({"gate", str(h.gatePolicy, h.gateTopK > 0 ? str(", top_k ", h.gateTopK) : std::string(),
                               ", temperature ", fmt("%g", h.gateTemperature))});
  if (!h.combinedFrom.empty())
    out.push_back({"combined from", h.combinedFrom + " (moe-dist combine: recomputed from its stored values)"});
  out.push_back({"mixture space",
                 h.mixtureSpace == "answer-letters"
                     ? std::string("answer-letters: the experts' vocabularies differ, so the mixture was taken over "
                                   "the answer-letter tokens only (not the full vocabulary)")
                     : "full-vocabulary: the experts share one vocabulary; the mixture is over every token"});
  std::string scoring = s.scoring == "letters" ? "letters (argmax over the answer letters)"
                                               : "vocab (argmax over the whole vocabulary; a non-letter is wrong)";
  if (s.scoring != h.scoring) scoring += str(", re-scored: the run itself used ", h.scoring);
  if (s.scoring == "vocab" && h.mixtureSpace == "answer-letters")
    scoring += "; the mixture over the answer letters has no vocabulary argmax, so under vocab scoring it is never "
               "right (use --scoring letters to score it)";
  out.push_back({"scoring", scoring});
  out.push_back({"prompt style", h.promptStyle});
  out.push_back({"split", str(h.split, ", ", h.shots, "-shot")});
  out.push_back({"data", h.dataRoot});
  out.push_back({"run", str("moe-dist ", h.version, ", ", h.ranks, " ranks, started ", h.startTime,
                            h.endTime.empty() ? std::string() : ", ended " + h.endTime,
                            h.resumeTimes.empty() ? std::string() : str(", resumed ", h.resumeTimes.size(), "x"))});
  return out;
}

std::string comparisonLine(const RunSummary& s) {
  const MixtureComparison& c = s.comparison;
  if (c.bestExpert < 0) return "mixture vs best expert: no questions";
  return str("mixture vs best expert (", c.bestExpertName, "): ", signedPoints(c.ci.difference), " points, ",
             fmt("%.0f", 100 * c.ci.level), "% CI [", signedPoints(c.ci.low), ", ", signedPoints(c.ci.high),
             "] (paired bootstrap, ", c.ci.resamples, " resamples); McNemar p = ", pValueText(c.test.p), " (",
             c.test.method(), "); discordant: mixture right & expert wrong ", c.test.b,
             ", mixture wrong & expert right ", c.test.c);
}

std::string letterMassLine(const RunSummary& s) {
  std::vector<std::string> parts;
  for (size_t e = 0; e < s.expertLetterMass.size(); ++e)
    parts.push_back(s.columns[e] + " " + fmt("%.3f", s.expertLetterMass[e]));
  parts.push_back("mixture " + fmt("%.3f", s.mixtureLetterMass));
  return "letter mass (mean probability on the answer letters): " + joined(parts, ", ");
}

const char* kErrorNote =
    "accuracy % ± standard error (micro: binomial sqrt(p(1-p)/n); macro: mean over subjects, propagated "
    "per-subject binomial errors); oracle: any expert right";

// The routing section's rows in report order.
std::vector<std::pair<std::string, const RoutingRow*>> routingRows(const RoutingSummary& r) {
  std::vector<std::pair<std::string, const RoutingRow*>> out;
  out.push_back({"overall", &r.overall});
  for (const auto& x : r.categories) out.push_back({"category", &x});
  for (const auto& x : r.subjects) out.push_back({"subject", &x});
  return out;
}

const char* kRoutingNote =
    "per expert: mean weight / share of questions where it had the largest weight (top-1); gate top-1: "
    "accuracy of the top-1 expert's answer; oracle: any expert right";

std::string routingCell(const RoutingRow& r, size_t x) {
  if (r.n == 0) return "n/a";
  return fmt("%.2f", r.meanWeight[x]) + " / " + fmt("%.0f%%", 100 * r.topShare[x]);
}

std::string routingText(const ResultsFile& f, const RunSummary& s) {
  const RoutingSummary& rt = s.routing;
  if (!rt.gated) return "";
  const size_t e = f.header.experts.size();
  std::string out = "\nrouting (gate " + rt.policy +
                    (f.header.gateTopK > 0 ? str(", top_k ", f.header.gateTopK) : std::string()) + "): " +
                    kRoutingNote + "\n";
  auto rows = routingRows(rt);
  size_t labelWidth = 4;
  for (const auto& [sec, r] : rows) labelWidth = std::max(labelWidth, r->name.size());
  auto pad = [](const std::string& v, size_t w, bool left) {
    std::string fill(w > v.size() ? w - v.size() : 0, ' ');
    return left ? v + fill : fill + v;
  };
  std::vector<size_t> widths;
  for (size_t x = 0; x < e; ++x) widths.push_back(std::max<size_t>(f.header.experts[x].size(), 12));
  out += pad("", labelWidth, true) + "  " + pad("n", 6, false);
  for (size_t x = 0; x < e; ++x) out += "  " + pad(f.header.experts[x], widths[x], false);
  out += "  " + pad("gate top-1", 12, false) + "  " + pad("oracle", 12, false) + "\n";
  std::string section;
  for (const auto& [sec, r] : rows) {
    if (sec != section && sec != "overall") out += "\n";
    section = sec;
    out += pad(r->name, labelWidth, true) + "  " + pad(std::to_string(r->n), 6, false);
    for (size_t x = 0; x < e; ++x) out += "  " + pad(routingCell(*r, x), widths[x], false);
    out += "  " + pad(percentCell(r->top1), 13, false) + "  " + pad(percentCell(r->oracle), 13, false) + "\n";
  }
  return out;
}

std::string routingMarkdown(const ResultsFile& f, const RunSummary& s) {
  const RoutingSummary& rt = s.routing;
  if (!rt.gated) return "";
  std::string out = "\n### routing (gate " + rt.policy + ")\n\n" + kRoutingNote + "\n\n| | n |";
  for (const auto& x : f.header.experts) out += " " + x + " |";
  out += " gate top-1 | oracle |\n|---|---:|";
  for (size_t x = 0; x < f.header.experts.size(); ++x) out += "---:|";
  out += "---:|---:|\n";
  for (const auto& [sec, r] : routingRows(rt)) {
    out += "| " + (sec == "subject" ? r->name : "**" + r->name + "**") + " | " + std::to_string(r->n) + " |";
    for (size_t x = 0; x < f.header.experts.size(); ++x) out += " " + routingCell(*r, x) + " |";
    out += " " + percentCell(r->top1) + " | " + percentCell(r->oracle) + " |\n";
  }
  return out;
}

// ---- costs ------------------------------------------------------------------------------------------

const char* kCostNote =
    "per rank, summed over the run's segments: prompt tokens = computed + cached (prefix cache); tok/s = "
    "computed / forward s; idle = collective (broadcast, gathers, mixture all-reduce, waiting for the group) + "
    "wait (on the coordinator)";

std::string mib(int64_t bytes) { return fmt("%.1f", static_cast<double>(bytes) / (1024.0 * 1024.0)); }
std::string secs(double v) { return std::isnan(v) ? "n/a" : fmt("%.3f", v); }
std::string rate(double v) { return std::isnan(v) ? "n/a" : fmt("%.1f", v); }

std::string expertName(const ResultsFile& f, const RankCost& c) {
  return c.expert >= 0 && static_cast<size_t>(c.expert) < f.header.experts.size() ? f.header.experts[c.expert]
                                                                                   : std::to_string(c.expert);
}

std::vector<std::string> costHeader() {
  return {"rank", "group", "expert", "host", "device", "model MiB", "batches", "questions", "prompt tok",
          "computed tok", "cached tok", "forward s", "tok/s", "tokenize s", "gate s", "collective s", "wait s",
          "write s", "wall s", "idle s"};
}
std::vector<std::string> costCells(const ResultsFile& f, const RankCost& c) {
  return {std::to_string(c.rank),          std::to_string(c.group),          expertName(f, c),
          c.host,                          c.device,                         mib(c.modelBytes),
          std::to_string(c.batches),       std::to_string(c.questions),      std::to_string(c.promptTokens),
          std::to_string(c.computedTokens), std::to_string(c.cachedTokens),  secs(c.forwardSeconds),
          rate(c.tokensPerSecond()),       secs(c.tokenizeSeconds),          secs(c.gateSeconds),
          secs(c.collectiveSeconds),       secs(c.waitSeconds),              secs(c.writeSeconds),
          secs(c.wallSeconds),             secs(idleSeconds(c))};
}

std::string stragglerLine(const ResultsFile& f, const CostSummary& s) {
  if (s.straggler < 0) return "straggler: n/a (no cost rows)";
  const RankCost& c = s.ranks[static_cast<size_t>(s.straggler)];
  if (s.ranks.size() == 1) return "straggler: n/a (one rank)";
  double others = 0;
  for (size_t i = 0; i < s.ranks.size(); ++i)
    if (static_cast<int>(i) != s.straggler) others += idleSeconds(s.ranks[i]);
  others /= static_cast<double>(s.ranks.size() - 1);
  return str("straggler: rank ", c.rank, " (expert ", expertName(f, c), ", group ", c.group, ", on ", c.host,
             "): the most forward time, ", secs(c.forwardSeconds), " s, and ", secs(idleSeconds(c)),
             " s idle against a mean of ", secs(others), " s idle on the other ranks");
}

std::string batchLine(const CostSummary& s) {
  if (s.batches == 0) return "per batch: no timing rows";
  return str("per batch (mean of ", s.batches, " batches, leader's view): wait ", secs(s.meanWait), " s, tokenize ",
             secs(s.meanTokenize), " s, forward ", secs(s.meanForward), " s (slowest expert), reduce ",
             secs(s.meanReduce), " s, write ", secs(s.meanWrite), " s; batch ", secs(s.meanBatch), " s");
}

std::string costSegmentsText(const CostSummary& s) {
  return s.segments == 1 ? std::string("1 segment") : str(s.segments, " segments (the run and its resumes; a killed segment records none)");
}

std::string costText(const ResultsFile& f, const RunSummary& rs) {
  const CostSummary& s = rs.costs;
  if (!s.recorded) return "\ncosts: not recorded in this file (written before cost accounting, or by moe-dist combine)\n";
  std::vector<std::vector<std::string>> table = {costHeader()};
  for (const auto& c : s.ranks) table.push_back(costCells(f, c));
  std::vector<size_t> widths(table[0].size(), 0);
  for (const auto& row : table)
    for (size_t j = 0; j < row.size(); ++j) widths[j] = std::max(widths[j], row[j].size());
  std::string out = "\ncosts (" + costSegmentsText(s) + "): " + kCostNote + "\n";
  for (const auto& row : table) {
    for (size_t j = 0; j < row.size(); ++j) {
      const std::string fill(widths[j] - row[j].size(), ' ');
      const bool left = j == 2 || j == 3 || j == 4;
      out += (j ? "  " : "") + (left ? row[j] + fill : fill + row[j]);
    }
    out += "\n";
  }
  return out + stragglerLine(f, s) + "\n" + batchLine(s) + "\n";
}

std::string costMarkdown(const ResultsFile& f, const RunSummary& rs) {
  const CostSummary& s = rs.costs;
  if (!s.recorded) return "\n### costs\n\nnot recorded in this file\n";
  std::string out = "\n### costs (" + costSegmentsText(s) + ")\n\n" + kCostNote + "\n\n|";
  const auto head = costHeader();
  for (const auto& hcell : head) out += " " + hcell + " |";
  out += "\n|";
  for (size_t j = 0; j < head.size(); ++j) out += (j == 2 || j == 3 || j == 4) ? "---|" : "---:|";
  out += "\n";
  for (const auto& c : s.ranks) {
    out += "|";
    for (const auto& cell : costCells(f, c)) out += " " + cell + " |";
    out += "\n";
  }
  return out + "\n" + stragglerLine(f, s) + "\n\n" + batchLine(s) + "\n";
}

std::string renderText(const ResultsFile& f, const RunSummary& s) {
  std::string out = "moe-dist report: " + f.path + "\n";
  for (const auto& [k, v] : facts(f, s)) {
    std::string label = k + ":";
    label.resize(std::max<size_t>(label.size() + 1, 15), ' ');
    out += "  " + label + v + "\n";
  }
  out += "\n" + std::string(kErrorNote) + "\n";
  auto rows = tableRows(s);
  size_t labelWidth = 4;
  for (const auto& r : rows) labelWidth = std::max(labelWidth, r.label.size());
  std::vector<size_t> widths;
  for (const auto& c : s.columns) widths.push_back(std::max<size_t>(c.size(), 12));
  auto pad = [](std::string v, size_t w, bool left) {
    // "±" is two bytes but one column.
    size_t shown = v.size() - (v.find("±") != std::string::npos ? 1 : 0);
    std::string fill(w > shown ? w - shown : 0, ' ');
    return left ? v + fill : fill + v;
  };
  out += pad("", labelWidth, true) + "  " + pad("n", 6, false);
  for (size_t j = 0; j < s.columns.size(); ++j) out += "  " + pad(s.columns[j], widths[j], false);
  out += "\n";
  std::string section;
  for (const auto& r : rows) {
    if (r.section != section && r.section != "overall") out += "\n";
    section = r.section;
    out += pad(r.label, labelWidth, true) + "  " + pad(std::to_string(r.row->n), 6, false);
    for (size_t j = 0; j < s.columns.size(); ++j) out += "  " + pad(percentCell(r.row->cells[j]), widths[j], false);
    out += "\n";
  }
  out += "\n" + comparisonLine(s) + "\n" + letterMassLine(s) + "\n";
  return out + routingText(f, s) + costText(f, s);
}

std::string renderMarkdown(const ResultsFile& f, const RunSummary& s) {
  std::string out = "## moe-dist report: `" + f.path + "`\n\n";
  for (const auto& [k, v] : facts(f, s)) out += "- **" + k + "**: " + v + "\n";
  out += "\n" + std::string(kErrorNote) + "\n\n| | n |";
  for (const auto& c : s.columns) out += " " + c + " |";
  out += "\n|---|---:|";
  for (size_t j = 0; j < s.columns.size(); ++j) out += "---:|";
  out += "\n";
  for (const auto& r : tableRows(s)) {
    std::string label = r.section == "subject" ? r.label : "**" + r.label + "**";
    out += "| " + label + " | " + std::to_string(r.row->n) + " |";
    for (const auto& cell : r.row->cells) out += " " + percentCell(cell) + " |";
    out += "\n";
  }
  out += "\n" + comparisonLine(s) + "\n\n" + letterMassLine(s) + "\n";
  return out + routingMarkdown(f, s) + costMarkdown(f, s);
}

std::string csvField(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char ch : v) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}
std::string csvNumber(double v) { return std::isnan(v) ? "" : fmt("%.10g", v); }

std::string renderCsv(const ResultsFile& f, const RunSummary& s) {
  std::string out;
  for (const auto& [k, v] : facts(f, s)) out += "# " + k + ": " + v + "\n";
  out += "# " + std::string(kErrorNote) + "; values are fractions\n";
  out += "# " + comparisonLine(s) + "\n# " + letterMassLine(s) + "\n";
  out += "section,name,n";
  for (const auto& c : s.columns) out += "," + csvField(c) + "," + csvField(c + "_se");
  out += "\n";
  for (const auto& r : tableRows(s)) {
    out += r.section + "," + csvField(r.row->name) + "," + std::to_string(r.row->n);
    for (const auto& cell : r.row->cells) out += "," + csvNumber(cell.value) + "," + csvNumber(cell.se);
    out += "\n";
  }
  if (s.routing.gated) {
    // A second table: the gate's routing (gate top-1 and oracle as accuracy fractions).
    out += "\n# routing (gate " + s.routing.policy + "): " + kRoutingNote + "\nrouting_section,name,n";
    for (const auto& x : f.header.experts) out += "," + csvField(x + "_weight") + "," + csvField(x + "_top1_share");
    out += ",gate_top1,gate_top1_se,oracle,oracle_se\n";
    for (const auto& [sec, r] : routingRows(s.routing)) {
      out += sec + "," + csvField(r->name) + "," + std::to_string(r->n);
      for (size_t x = 0; x < f.header.experts.size(); ++x)
        out += "," + csvNumber(r->meanWeight[x]) + "," + csvNumber(r->topShare[x]);
      out += "," + csvNumber(r->top1.value) + "," + csvNumber(r->top1.se) + "," + csvNumber(r->oracle.value) + "," +
             csvNumber(r->oracle.se) + "\n";
    }
  }
  if (s.costs.recorded) {
    // A third table: the per-rank costs, raw numbers (bytes, seconds).
    out += "\n# costs (" + costSegmentsText(s.costs) + "): " + kCostNote + "\n# " + stragglerLine(f, s.costs) +
           "\n# " + batchLine(s.costs) + "\n";
    out += "cost_rank,group,expert,host,device,model_bytes,batches,questions,prompt_tokens,computed_tokens,"
           "cached_tokens,forward_seconds,tokens_per_second,tokenize_seconds,gate_seconds,collective_seconds,"
           "wait_seconds,write_seconds,wall_seconds,idle_seconds,straggler\n";
    for (size_t i = 0; i < s.costs.ranks.size(); ++i) {
      const RankCost& c = s.costs.ranks[i];
      out += std::to_string(c.rank) + "," + std::to_string(c.group) + "," + csvField(expertName(f, c)) + "," +
             csvField(c.host) + "," + csvField(c.device) + "," + std::to_string(c.modelBytes) + "," +
             std::to_string(c.batches) + "," + std::to_string(c.questions) + "," + std::to_string(c.promptTokens) +
             "," + std::to_string(c.computedTokens) + "," + std::to_string(c.cachedTokens) + "," +
             csvNumber(c.forwardSeconds) + "," + csvNumber(c.tokensPerSecond()) + "," + csvNumber(c.tokenizeSeconds) +
             "," + csvNumber(c.gateSeconds) + "," + csvNumber(c.collectiveSeconds) + "," + csvNumber(c.waitSeconds) +
             "," + csvNumber(c.writeSeconds) + "," + csvNumber(c.wallSeconds) + "," + csvNumber(idleSeconds(c)) + "," +
             (static_cast<int>(i) == s.costs.straggler ? "1" : "0") + "\n";
    }
  }
  return out;
}

nlohmann::json jsonNumber(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

std::string renderJson(const ResultsFile& f, const RunSummary& s) {
  using nlohmann::json;
  const ResultsHeader& h = f.header;
  json j;
  j["file"] = f.path;
  j["status"] = h.status;
  j["complete"] = f.complete();
  j["questions"] = s.questions;
  j["scoring"] = s.scoring;
  j["run_scoring"] = h.scoring;
  std::vector<std::string> subjects;
  for (const auto& x : h.subjects) subjects.push_back(x.subject);
  j["header"] = {{"models", h.models},         {"model_hashes", h.modelHashes}, {"experts", h.experts},
                 {"mode", h.mode},             {"weights", h.weights},          {"prompt_style", h.promptStyle},
                 {"mixture_space", h.mixtureSpace}, {"split", h.split},          {"shots", h.shots},
                 {"data_root", h.dataRoot},    {"version", h.version},          {"ranks", h.ranks},
                 {"devices", h.devices},       {"start_time", h.startTime},     {"end_time", h.endTime},
                 {"resume_times", h.resumeTimes}, {"command_line", h.commandLine}, {"max_choices", h.maxChoices},
                 {"subjects", subjects}};
  j["columns"] = s.columns;
  j["stderr_methods"] = {{"micro", "binomial sqrt(p(1-p)/n)"},
                         {"macro", "propagated per-subject binomial errors sqrt(sum_s p_s(1-p_s)/n_s)/k"}};
  json rows = json::array();
  for (const auto& r : tableRows(s)) {
    json acc = json::array(), se = json::array(), correct = json::array();
    for (const auto& c : r.row->cells) {
      acc.push_back(jsonNumber(c.value));
      se.push_back(jsonNumber(c.se));
      correct.push_back(c.correct);
    }
    json row = {{"section", r.section}, {"name", r.row->name}, {"n", r.row->n},
                {"accuracy", acc},      {"stderr", se},        {"correct", correct}};
    if (r.row == &s.macro) row["subjects"] = s.macro.groups;
    rows.push_back(row);
  }
  j["rows"] = rows;
  const MixtureComparison& c = s.comparison;
  j["mixture_vs_best"] = {{"best_expert", c.bestExpert},
                          {"best_expert_name", c.bestExpertName},
                          {"n", c.mixture.n},
                          {"mixture_accuracy", jsonNumber(c.mixture.value)},
                          {"expert_accuracy", jsonNumber(c.expert.value)},
                          {"difference", jsonNumber(c.ci.difference)},
                          {"ci_low", jsonNumber(c.ci.low)},
                          {"ci_high", jsonNumber(c.ci.high)},
                          {"ci_level", c.ci.level},
                          {"bootstrap_resamples", c.ci.resamples},
                          {"bootstrap_seed", c.ci.seed},
                          {"mcnemar_b", c.test.b},
                          {"mcnemar_c", c.test.c},
                          {"mcnemar_statistic", jsonNumber(c.test.statistic)},
                          {"mcnemar_p", jsonNumber(c.test.p)},
                          {"mcnemar_method", c.test.method()}};
  json mass = json::array();
  for (double m : s.expertLetterMass) mass.push_back(jsonNumber(m));
  j["letter_mass"] = {{"experts", mass}, {"mixture", jsonNumber(s.mixtureLetterMass)}};
  j["header"]["gate_policy"] = h.gatePolicy.empty() ? "none" : h.gatePolicy;
  j["header"]["gate_config"] = h.gateConfig;
  j["header"]["combined_from"] = h.combinedFrom;
  if (s.routing.gated) {
    json rows = json::array();
    for (const auto& [sec, r] : routingRows(s.routing)) {
      json w = json::array(), t = json::array();
      for (size_t x = 0; x < r->meanWeight.size(); ++x) {
        w.push_back(jsonNumber(r->meanWeight[x]));
        t.push_back(jsonNumber(r->topShare[x]));
      }
      rows.push_back({{"section", sec},
                      {"name", r->name},
                      {"n", r->n},
                      {"mean_weight", w},
                      {"top1_share", t},
                      {"gate_top1_accuracy", jsonNumber(r->top1.value)},
                      {"gate_top1_stderr", jsonNumber(r->top1.se)},
                      {"oracle_accuracy", jsonNumber(r->oracle.value)},
                      {"oracle_stderr", jsonNumber(r->oracle.se)}});
    }
    j["routing"] = {{"policy", s.routing.policy}, {"top_k", h.gateTopK}, {"rows", rows}};
  }
  const CostSummary& cs = s.costs;
  json costs = {{"recorded", cs.recorded}, {"segments", cs.segments}};
  json ranks = json::array();
  for (const RankCost& c : cs.ranks)
    ranks.push_back({{"rank", c.rank},
                     {"group", c.group},
                     {"expert", c.expert},
                     {"expert_name", expertName(f, c)},
                     {"host", c.host},
                     {"device", c.device},
                     {"model", c.model},
                     {"model_bytes", c.modelBytes},
                     {"batches", c.batches},
                     {"questions", c.questions},
                     {"prompt_tokens", c.promptTokens},
                     {"computed_tokens", c.computedTokens},
                     {"cached_tokens", c.cachedTokens},
                     {"padded_tokens", c.paddedTokens},
                     {"forward_seconds", c.forwardSeconds},
                     {"tokens_per_second", jsonNumber(c.tokensPerSecond())},
                     {"tokenize_seconds", c.tokenizeSeconds},
                     {"gate_seconds", c.gateSeconds},
                     {"collective_seconds", c.collectiveSeconds},
                     {"wait_seconds", c.waitSeconds},
                     {"write_seconds", c.writeSeconds},
                     {"wall_seconds", c.wallSeconds},
                     {"idle_seconds", idleSeconds(c)}});
  costs["ranks"] = ranks;
  costs["straggler_rank"] = cs.straggler >= 0 ? json(cs.ranks[static_cast<size_t>(cs.straggler)].rank) : json(nullptr);
  costs["batches"] = cs.batches;
  costs["batch_means"] = {{"wait_seconds", jsonNumber(cs.meanWait)},         {"tokenize_seconds", jsonNumber(cs.meanTokenize)},
                          {"forward_seconds", jsonNumber(cs.meanForward)},   {"reduce_seconds", jsonNumber(cs.meanReduce)},
                          {"write_seconds", jsonNumber(cs.meanWrite)},       {"batch_seconds", jsonNumber(cs.meanBatch)}};
  j["costs"] = costs;
  return j.dump(2) + "\n";
}

}  // namespace

double idleSeconds(const RankCost& c) { return c.collectiveSeconds + c.waitSeconds; }

CostSummary summarizeCosts(const ResultsFile& file) {
  CostSummary s;
  s.recorded = !file.ranks.empty();
  std::map<int32_t, RankCost> byRank;
  std::set<int32_t> segments;
  for (const RankCost& c : file.ranks) {
    segments.insert(c.segment);
    auto it = byRank.find(c.rank);
    if (it == byRank.end()) {
      byRank.emplace(c.rank, c);
      continue;
    }
    RankCost& t = it->second;
    // Identity from the latest segment; counts and seconds add up.
    if (c.segment >= t.segment) {
      t.segment = c.segment;
      t.group = c.group;
      t.expert = c.expert;
      t.host = c.host;
      t.device = c.device;
      t.model = c.model;
      t.modelBytes = c.modelBytes;
    }
    for (const auto& [name, count] : kRankCostCounts) t.*count += c.*count;
    for (const auto& [name, seconds] : kRankCostSeconds) t.*seconds += c.*seconds;
  }
  s.segments = static_cast<int>(segments.size());
  for (auto& [r, c] : byRank) s.ranks.push_back(c);
  for (size_t i = 0; i < s.ranks.size(); ++i) {
    if (s.straggler < 0) {
      s.straggler = static_cast<int>(i);
      continue;
    }
    const RankCost& a = s.ranks[i];
    const RankCost& b = s.ranks[static_cast<size_t>(s.straggler)];
    if (a.forwardSeconds > b.forwardSeconds ||
        (a.forwardSeconds == b.forwardSeconds && idleSeconds(a) < idleSeconds(b)))
      s.straggler = static_cast<int>(i);
  }
  s.batches = static_cast<int64_t>(file.timing.size());
  if (s.batches == 0) {
    s.meanWait = s.meanTokenize = s.meanForward = s.meanReduce = s.meanWrite = s.meanBatch = kNaN;
    return s;
  }
  for (const BatchTiming& t : file.timing) {
    s.meanWait += t.waitSeconds;
    s.meanTokenize += t.tokenizeSeconds.empty() ? 0.0 : *std::max_element(t.tokenizeSeconds.begin(), t.tokenizeSeconds.end());
    s.meanForward += t.forwardSeconds.empty() ? 0.0 : *std::max_element(t.forwardSeconds.begin(), t.forwardSeconds.end());
    s.meanReduce += t.reduceSeconds;
    s.meanWrite += t.writeSeconds;
    s.meanBatch += t.batchSeconds;
  }
  const double n = static_cast<double>(s.batches);
  s.meanWait /= n;
  s.meanTokenize /= n;
  s.meanForward /= n;
  s.meanReduce /= n;
  s.meanWrite /= n;
  s.meanBatch /= n;
  return s;
}

RunSummary summarize(const ResultsFile& file, const std::string& scoringIn) {
  const ResultsHeader& h = file.header;
  RunSummary s;
  s.scoring = scoringIn.empty() ? h.scoring : scoringIn;
  MOE_CHECK(s.scoring == "letters" || s.scoring == "vocab", "report: scoring must be letters or vocab, got '",
            s.scoring, "'");
  const bool stored = s.scoring == h.scoring;
  const size_t e = h.experts.size(), c = static_cast<size_t>(h.maxChoices), m = e + 2;
  s.columns = h.experts;
  s.columns.push_back("mixture");
  s.columns.push_back("oracle");
  s.questions = static_cast<int64_t>(file.rows.size());
  s.costs = summarizeCosts(file);

  std::map<std::string, size_t> subjectIndex;
  for (size_t i = 0; i < h.subjects.size(); ++i) subjectIndex[h.subjects[i].subject] = i;
  // outcome[j][r]: column j right on row r.
  std::vector<std::vector<uint8_t>> outcome(m, std::vector<uint8_t>(file.rows.size()));
  std::vector<size_t> rowSubject(file.rows.size());
  std::vector<double> massSum(e, 0), mixtureMassSum = {0};
  std::vector<int64_t> massCount(e, 0), mixtureMassCount = {0};
  for (size_t r = 0; r < file.rows.size(); ++r) {
    const QuestionResult& q = file.rows[r];
    auto it = subjectIndex.find(q.subject);
    MOE_CHECK(it != subjectIndex.end(), file.path, ": row ", r, ": subject '", q.subject, "' is not in the subject table");
    rowSubject[r] = it->second;
    MOE_CHECK(q.numChoices >= 1 && static_cast<size_t>(q.numChoices) <= c && q.expertCorrect.size() == e &&
                  q.expertVocabChoice.size() == e && q.expertChoiceProbs.size() == e * c &&
                  q.expertLetterMass.size() == e && q.mixtureChoiceProbs.size() == c,
              file.path, ": row ", r, " (", q.subject, ", index ", q.index, ") does not have the shape of E=", e,
              " experts and C=", c, " choices");
    bool any = false;
    for (size_t x = 0; x < e; ++x) {
      bool right;
      if (stored) right = q.expertCorrect[x] != 0;
      else if (s.scoring == "vocab") right = q.expertVocabChoice[x] == q.gold;
      else right = argmaxChoice(q.expertChoiceProbs.data() + x * c, q.numChoices) == q.gold;
      outcome[x][r] = right;
      any = any || right;
      if (std::isfinite(q.expertLetterMass[x])) {
        massSum[x] += q.expertLetterMass[x];
        ++massCount[x];
      }
    }
    bool mixRight;
    if (stored) mixRight = q.correct;
    else if (s.scoring == "vocab") mixRight = q.mixtureVocabChoice == q.gold;
    else mixRight = argmaxChoice(q.mixtureChoiceProbs.data(), q.numChoices) == q.gold;
    outcome[e][r] = mixRight;
    outcome[e + 1][r] = any;
    if (std::isfinite(q.mixtureLetterMass)) {
      mixtureMassSum[0] += q.mixtureLetterMass;
      ++mixtureMassCount[0];
    }
  }

  // Per subject.
  std::vector<std::vector<int64_t>> subjCorrect(h.subjects.size(), std::vector<int64_t>(m, 0));
  std::vector<int64_t> subjN(h.subjects.size(), 0);
  for (size_t r = 0; r < file.rows.size(); ++r) {
    ++subjN[rowSubject[r]];
    for (size_t j = 0; j < m; ++j) subjCorrect[rowSubject[r]][j] += outcome[j][r];
  }
  for (size_t i = 0; i < h.subjects.size(); ++i)
    if (subjN[i] > 0) s.subjects.push_back(makeRow(h.subjects[i].subject, subjCorrect[i], subjN[i]));

  // Per category (micro within the category, as MMLU's evaluate.py), paper order first.
  std::vector<std::string> order = mmluCategories();
  for (const auto& info : h.subjects)
    if (std::find(order.begin(), order.end(), info.category) == order.end()) order.push_back(info.category);
  for (const auto& cat : order) {
    std::vector<int64_t> correct(m, 0);
    int64_t n = 0;
    for (size_t i = 0; i < h.subjects.size(); ++i) {
      if (h.subjects[i].category != cat) continue;
      n += subjN[i];
      for (size_t j = 0; j < m; ++j) correct[j] += subjCorrect[i][j];
    }
    if (n > 0) s.categories.push_back(makeRow(cat, correct, n));
  }

  // Overall.
  std::vector<int64_t> total(m, 0);
  for (size_t j = 0; j < m; ++j)
    for (uint8_t v : outcome[j]) total[j] += v;
  s.micro = makeRow("micro", total, s.questions);
  s.macro.name = "macro";
  s.macro.n = s.questions;
  for (size_t j = 0; j < m; ++j) {
    std::vector<stats::Accuracy> perSubject;
    for (const auto& row : s.subjects) perSubject.push_back(row.cells[j]);
    stats::MacroAverage avg = stats::macroAverage(perSubject);
    stats::Accuracy cell;
    cell.correct = total[j];
    cell.n = s.questions;
    cell.value = avg.value;
    cell.se = avg.se;
    s.macro.cells.push_back(cell);
    s.macro.groups = avg.groups;
  }

  // Mixture against the best expert.
  MixtureComparison& cmp = s.comparison;
  if (s.questions > 0) {
    size_t best = 0;
    for (size_t x = 1; x < e; ++x)
      if (s.micro.cells[x].value > s.micro.cells[best].value) best = x;
    cmp.bestExpert = static_cast<int>(best);
    cmp.bestExpertName = h.experts[best];
    cmp.expert = s.micro.cells[best];
  } else {
    cmp.expert = stats::accuracy(0, 0);
  }
  cmp.mixture = s.micro.cells[e];
  const std::vector<uint8_t>& bestOutcome = cmp.bestExpert >= 0 ? outcome[static_cast<size_t>(cmp.bestExpert)]
                                                                 : outcome[e];
  cmp.ci = stats::pairedBootstrap(outcome[e], bestOutcome);
  cmp.test = stats::mcnemar(outcome[e], bestOutcome);

  for (size_t x = 0; x < e; ++x)
    s.expertLetterMass.push_back(massCount[x] ? massSum[x] / static_cast<double>(massCount[x]) : kNaN);
  s.mixtureLetterMass = mixtureMassCount[0] ? mixtureMassSum[0] / static_cast<double>(mixtureMassCount[0]) : kNaN;

  // Routing of a gated run.
  RoutingSummary& rt = s.routing;
  rt.gated = !h.gatePolicy.empty();
  rt.policy = h.gatePolicy;
  if (rt.gated) {
    struct Acc {
      int64_t n = 0, top1 = 0, oracle = 0;
      std::vector<double> weight, top;
    };
    auto blank = [&] {
      Acc a;
      a.weight.assign(e, 0.0);
      a.top.assign(e, 0.0);
      return a;
    };
    Acc all = blank();
    std::vector<Acc> bySubject(h.subjects.size(), blank());
    for (size_t r = 0; r < file.rows.size(); ++r) {
      const QuestionResult& q = file.rows[r];
      MOE_CHECK(q.weights.size() == e, file.path, ": row ", r, " has ", q.weights.size(), " weights for ", e,
                " experts");
      size_t best = 0;
      for (size_t x = 1; x < e; ++x)
        if (q.weights[x] > q.weights[best]) best = x;
      for (Acc* a : {&all, &bySubject[rowSubject[r]]}) {
        ++a->n;
        for (size_t x = 0; x < e; ++x) a->weight[x] += q.weights[x];
        a->top[best] += 1;
        a->top1 += outcome[best][r];
        a->oracle += outcome[e + 1][r];
      }
    }
    auto row = [&](const std::string& name, const Acc& a) {
      RoutingRow out;
      out.name = name;
      out.n = a.n;
      for (size_t x = 0; x < e; ++x) {
        out.meanWeight.push_back(a.n ? a.weight[x] / static_cast<double>(a.n) : kNaN);
        out.topShare.push_back(a.n ? a.top[x] / static_cast<double>(a.n) : kNaN);
      }
      out.top1 = stats::accuracy(a.top1, a.n);
      out.oracle = stats::accuracy(a.oracle, a.n);
      return out;
    };
    rt.overall = row("overall", all);
    for (size_t i = 0; i < h.subjects.size(); ++i)
      if (bySubject[i].n > 0) rt.subjects.push_back(row(h.subjects[i].subject, bySubject[i]));
    for (const auto& cat : order) {
      Acc a = blank();
      for (size_t i = 0; i < h.subjects.size(); ++i) {
        if (h.subjects[i].category != cat) continue;
        const Acc& b = bySubject[i];
        a.n += b.n;
        a.top1 += b.top1;
        a.oracle += b.oracle;
        for (size_t x = 0; x < e; ++x) {
          a.weight[x] += b.weight[x];
          a.top[x] += b.top[x];
        }
      }
      if (a.n > 0) rt.categories.push_back(row(cat, a));
    }
  }
  return s;
}

std::string formatReport(const ResultsFile& file, const RunSummary& summary, const std::string& format) {
  if (format == "text") return renderText(file, summary);
  if (format == "markdown") return renderMarkdown(file, summary);
  if (format == "csv") return renderCsv(file, summary);
  if (format == "json") return renderJson(file, summary);
  MOE_THROW("report: format '", format, "' is not one of: text, markdown, csv, json");
}

std::string formatReport(const ResultsFile& file, const std::string& format) {
  return formatReport(file, summarize(file), format);
}

}  // namespace moe
