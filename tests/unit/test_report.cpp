// The report: summary values, re-scoring, and each output format, on synthetic in-memory files
// (and one written to disk for runReportCommand).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/config.h"
#include "common/error.h"
#include "coordinator/report.h"
#include "coordinator/report_command.h"
#include "test_results_synthetic.h"

using namespace moe;
using moe::testing::SyntheticOptions;

namespace {

ResultsFile synthetic(const SyntheticOptions& o, const std::string& status = "complete") {
  ResultsFile f;
  f.path = "synthetic.h5";
  f.header = moe::testing::syntheticHeader(o);
  f.header.status = status;
  f.header.version = "0.1.0";
  f.header.startTime = "2024-01-01T00:00:00Z";
  if (status == "complete") f.header.endTime = "2024-01-01T01:00:00Z";
  f.rows = moe::testing::syntheticRows(o);
  return f;
}

std::string errorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expectSameSummary(const RunSummary& a, const RunSummary& b) {
  ASSERT_EQ(a.columns, b.columns);
  ASSERT_EQ(a.subjects.size(), b.subjects.size());
  auto same = [](const AccuracyRow& x, const AccuracyRow& y) {
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.n, y.n);
    for (size_t j = 0; j < x.cells.size(); ++j) {
      EXPECT_EQ(x.cells[j].correct, y.cells[j].correct) << x.name << " column " << j;
      EXPECT_DOUBLE_EQ(x.cells[j].value, y.cells[j].value) << x.name << " column " << j;
    }
  };
  same(a.micro, b.micro);
  same(a.macro, b.macro);
  for (size_t i = 0; i < a.subjects.size(); ++i) same(a.subjects[i], b.subjects[i]);
  for (size_t i = 0; i < a.categories.size(); ++i) same(a.categories[i], b.categories[i]);
  EXPECT_EQ(a.comparison.test.b, b.comparison.test.b);
  EXPECT_EQ(a.comparison.test.c, b.comparison.test.c);
}

std::vector<std::string> splitCsv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string f;
  while (std::getline(ss, f, ',')) out.push_back(f);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

}  // namespace

TEST(Report, SummaryCountsOracleAndCategories) {
  SyntheticOptions o;
  ResultsFile f = synthetic(o);
  RunSummary s = summarize(f);
  EXPECT_EQ(s.scoring, "letters");
  EXPECT_EQ(s.questions, 32);
  EXPECT_EQ(s.columns, (std::vector<std::string>{"expert0", "expert1", "expert2", "mixture", "oracle"}));
  // Independent counts.
  std::vector<int64_t> k(5, 0);
  for (const auto& q : f.rows) {
    bool any = false;
    for (int e = 0; e < 3; ++e) {
      k[e] += q.expertCorrect[e];
      any = any || q.expertCorrect[e];
    }
    k[3] += q.correct;
    k[4] += any;
  }
  for (int j = 0; j < 5; ++j) {
    EXPECT_EQ(s.micro.cells[j].correct, k[j]);
    EXPECT_DOUBLE_EQ(s.micro.cells[j].value, k[j] / 32.0);
  }
  ASSERT_EQ(s.categories.size(), 4u);
  EXPECT_EQ(s.categories[0].name, "STEM");
  EXPECT_EQ(s.categories[3].name, "other");
  EXPECT_EQ(s.categories[3].n, 10);
  EXPECT_EQ(s.macro.groups, 5);
  // Best expert: highest micro accuracy.
  int best = 0;
  for (int e = 1; e < 3; ++e)
    if (k[e] > k[best]) best = e;
  EXPECT_EQ(s.comparison.bestExpert, best);
  EXPECT_EQ(s.comparison.bestExpertName, "expert" + std::to_string(best));
  EXPECT_DOUBLE_EQ(s.comparison.ci.difference, (k[3] - k[best]) / 32.0);
}

TEST(Report, RescoringMatchesARunScoredThatWay) {
  SyntheticOptions letters, vocab;
  vocab.scoring = "vocab";
  ResultsFile fl = synthetic(letters), fv = synthetic(vocab);
  // The same probabilities scored two ways by the "engine": re-scoring either file reproduces the other.
  expectSameSummary(summarize(fl, "vocab"), summarize(fv));
  expectSameSummary(summarize(fv, "letters"), summarize(fl));
  EXPECT_EQ(summarize(fl, "vocab").scoring, "vocab");
  EXPECT_NE(errorOf([&] { summarize(fl, "logits"); }).find("scoring must be letters or vocab"), std::string::npos);
}

TEST(Report, TextStatesTheFactsAndTheTable) {
  SyntheticOptions o;
  o.mixtureSpace = "answer-letters";
  ResultsFile f = synthetic(o);
  RunSummary s = summarize(f);
  const std::string t = formatReport(f, s, "text");
  EXPECT_NE(t.find("complete, 32 questions in 5 subjects"), std::string::npos) << t;
  EXPECT_NE(t.find("the experts' vocabularies differ, so the mixture was taken over the answer-letter tokens only"),
            std::string::npos);
  EXPECT_NE(t.find("scoring:       letters"), std::string::npos) << t;
  EXPECT_NE(t.find("test, 5-shot"), std::string::npos);
  EXPECT_NE(t.find("expert0 = /models/expert-0 (sha256:aaaaaaaa)"), std::string::npos);
  EXPECT_NE(t.find("mixture vs best expert (" + s.comparison.bestExpertName + ")"), std::string::npos);
  EXPECT_NE(t.find("McNemar p = "), std::string::npos);
  EXPECT_NE(t.find("letter mass (mean probability on the answer letters): expert0 "), std::string::npos);
  // Row order: micro, macro, the four categories, then the subjects.
  const size_t micro = t.find("overall (micro)"), macro = t.find("overall (macro, 5 subjects)"),
               stem = t.find("\nSTEM "), other = t.find("\nother "), algebra = t.find("\nabstract_algebra "),
               quiz = t.find("\nthree_choice_quiz ");
  ASSERT_NE(quiz, std::string::npos) << t;
  EXPECT_TRUE(micro < macro && macro < stem && stem < other && other < algebra && algebra < quiz) << t;
  // The micro row's mixture cell, as percent ± standard error.
  const auto& mix = s.micro.cells[3];
  char cell[64];
  std::snprintf(cell, sizeof(cell), "%.1f ± %.1f", 100 * mix.value, 100 * mix.se);
  EXPECT_NE(t.find(cell), std::string::npos) << cell << "\n" << t;
  // Vocab scoring of a letters-space mixture is flagged.
  EXPECT_NE(formatReport(f, summarize(f, "vocab"), "text").find("has no vocabulary argmax"), std::string::npos);
}

TEST(Report, PartialFileIsSaidToBePartial) {
  SyntheticOptions o;
  ResultsFile f = synthetic(o, "running");
  f.rows.resize(12);
  const std::string t = formatReport(f, summarize(f), "text");
  EXPECT_NE(t.find("PARTIAL (status 'running'): 12 questions in 2 subjects written so far"), std::string::npos) << t;
  // No questions at all: still a report.
  f.rows.clear();
  RunSummary s = summarize(f);
  EXPECT_EQ(s.comparison.bestExpert, -1);
  EXPECT_NE(formatReport(f, s, "text").find("mixture vs best expert: no questions"), std::string::npos);
  EXPECT_NO_THROW(formatReport(f, s, "json"));
}

TEST(Report, MarkdownCsvAndJsonCarryTheSameNumbers) {
  SyntheticOptions o;
  o.experts = 2;
  ResultsFile f = synthetic(o);
  RunSummary s = summarize(f);
  const size_t M = s.columns.size();

  const std::string md = formatReport(f, s, "markdown");
  EXPECT_NE(md.find("| | n | expert0 | expert1 | mixture | oracle |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **overall (micro)** | 32 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| abstract_algebra | 9 |"), std::string::npos) << md;

  const std::string csv = formatReport(f, s, "csv");
  std::stringstream ss(csv);
  std::string line;
  std::vector<std::vector<std::string>> table;
  while (std::getline(ss, line))
    if (!line.empty() && line[0] != '#') table.push_back(splitCsv(line));
  ASSERT_EQ(table.size(), 1 + 2 + 4 + 5u);  // header, overall x2, categories, subjects
  EXPECT_EQ(table[0][0], "section");
  EXPECT_EQ(table[0][3], "expert0");
  EXPECT_EQ(table[0][4], "expert0_se");
  for (const auto& row : table) EXPECT_EQ(row.size(), 3 + 2 * M);
  EXPECT_EQ(table[1][0], "overall");
  EXPECT_EQ(table[1][1], "micro");
  EXPECT_EQ(table[1][2], "32");
  for (size_t j = 0; j < M; ++j) {
    EXPECT_NEAR(std::stod(table[1][3 + 2 * j]), s.micro.cells[j].value, 1e-9);
    EXPECT_NEAR(std::stod(table[1][4 + 2 * j]), s.micro.cells[j].se, 1e-9);
  }
  EXPECT_EQ(table[11][1], "three_choice_quiz");
  EXPECT_NE(csv.find("# mixture vs best expert"), std::string::npos);

  const nlohmann::json j = nlohmann::json::parse(formatReport(f, s, "json"));
  EXPECT_EQ(j["questions"], 32);
  EXPECT_EQ(j["complete"], true);
  EXPECT_EQ(j["header"]["mixture_space"], "full-vocabulary");
  EXPECT_EQ(j["columns"].size(), M);
  ASSERT_EQ(j["rows"].size(), 11u);
  EXPECT_EQ(j["rows"][1]["name"], "macro");
  EXPECT_EQ(j["rows"][1]["subjects"], 5);
  for (size_t c = 0; c < M; ++c) {
    EXPECT_DOUBLE_EQ(j["rows"][0]["accuracy"][c].get<double>(), s.micro.cells[c].value);
    EXPECT_DOUBLE_EQ(j["rows"][1]["stderr"][c].get<double>(), s.macro.cells[c].se);
  }
  EXPECT_EQ(j["mixture_vs_best"]["mcnemar_b"], s.comparison.test.b);
  EXPECT_DOUBLE_EQ(j["mixture_vs_best"]["ci_low"].get<double>(), s.comparison.ci.low);
  EXPECT_EQ(j["letter_mass"]["experts"].size(), 2u);

  EXPECT_NE(errorOf([&] { formatReport(f, s, "html"); }).find("format 'html' is not one of"), std::string::npos);
}

TEST(Report, CommandReadsTheFileAndHonoursScoring) {
  const std::string path = ::testing::TempDir() + "moe_report_cmd_" + std::to_string(getpid()) + ".h5";
  SyntheticOptions o;
  {
    auto w = ResultsWriter::create(path, moe::testing::syntheticHeader(o), true);
    w.append(moe::testing::syntheticRows(o));
    w.finish();
  }
  auto run = [&](std::vector<const char*> args) {
    args.insert(args.begin(), {"moe-dist", "report"});
    RunConfig cfg = parseCommandLine(static_cast<int>(args.size()), args.data(), 2);
    std::FILE* out = std::tmpfile();
    runReportCommand(cfg, out);
    std::rewind(out);
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), out)) > 0) text.append(buf, n);
    std::fclose(out);
    return text;
  };
  const nlohmann::json byFile = nlohmann::json::parse(run({path.c_str(), "--format", "json"}));
  EXPECT_EQ(byFile["scoring"], "letters");
  const nlohmann::json vocab = nlohmann::json::parse(run({path.c_str(), "--format", "json", "--scoring", "vocab"}));
  EXPECT_EQ(vocab["scoring"], "vocab");
  EXPECT_EQ(vocab["run_scoring"], "letters");
  ResultsFile f = readResults(path);
  RunSummary sv = summarize(f, "vocab");
  EXPECT_EQ(vocab["rows"][0]["correct"][3], sv.micro.cells[3].correct);
  EXPECT_NE(run({path.c_str()}).find("moe-dist report: " + path), std::string::npos);
  EXPECT_NE(errorOf([&] { run({}); }).find("report: expected one results FILE"), std::string::npos);
  std::remove(path.c_str());
}
