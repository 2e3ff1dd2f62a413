// The offline side of gated mixtures on synthetic results: combine (coordinator/combine.h),
// calibrate (coordinator/calibrate.h), the gate attributes of the results file and the report's
// routing section.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <unistd.h>

#include "common/error.h"
#include "coordinator/calibrate.h"
#include "coordinator/combine.h"
#include "coordinator/report.h"
#include "coordinator/results.h"
#include "test_results_synthetic.h"

using namespace moe;

namespace {

std::string tempPath(const std::string& suffix) {
  char name[] = "/tmp/moe_gate_off_XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  close(fd);
  std::remove(name);
  return std::string(name) + suffix;
}

ResultsFile synthetic(const moe::testing::SyntheticOptions& o, const std::string& split = "test") {
  ResultsFile f;
  f.path = "synthetic.h5";
  f.header = moe::testing::syntheticHeader(o);
  f.header.split = split;
  f.header.status = "complete";
  f.rows = moe::testing::syntheticRows(o);
  return f;
}

std::string errorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

RunConfig gateConfig(const std::string& yaml) {
  RunConfig c;
  applyYamlString(c, yaml, "gate.yaml");
  c.output = "combined.h5";
  return c;
}

}  // namespace

TEST(Combine, MeanReproducesTheStoredMixture) {
  // The synthetic rows are built as the job builds them: mixture = sum_e w_e expert letter probs.
  for (const char* mode : {"mean", "weighted"}) {
    moe::testing::SyntheticOptions o;
    o.mode = mode;
    const ResultsFile src = synthetic(o);
    RunConfig c;
    c.output = "x.h5";
    const ResultsFile out = combineResults(src, c);
    ASSERT_EQ(out.rows.size(), src.rows.size());
    for (size_t i = 0; i < src.rows.size(); ++i) {
      const auto& a = out.rows[i];
      const auto& b = src.rows[i];
      for (int k = 0; k < b.numChoices; ++k) {
        EXPECT_NEAR(a.mixtureLetterProbs[k], b.mixtureLetterProbs[k], 1e-6) << mode << " row " << i;
        EXPECT_NEAR(a.mixtureChoiceProbs[k], b.mixtureChoiceProbs[k], 1e-6) << mode << " row " << i;
      }
      EXPECT_EQ(a.weights, b.weights);
      EXPECT_TRUE(std::isnan(a.mixtureEntropy));  // a soft full-vocabulary mixture's entropy is unknown
    }
    EXPECT_EQ(out.header.combinedFrom, "synthetic.h5");
    EXPECT_EQ(out.header.mode, std::string(mode));
  }
}

TEST(Combine, HardRoutingIsTheExpertExactly) {
  moe::testing::SyntheticOptions o;
  const ResultsFile src = synthetic(o);
  const ResultsFile out = combineResults(src, gateConfig("gate:\n  policy: static\n  weights: [1, 1, 5]\n  top_k: 1\n"));
  EXPECT_EQ(out.header.gatePolicy, "static");
  EXPECT_EQ(out.header.gateTopK, 1);
  for (const auto& r : out.rows) {
    EXPECT_EQ(r.weights, (std::vector<float>{0, 0, 1}));
    for (int k = 0; k < r.numChoices; ++k) EXPECT_EQ(r.mixtureLetterProbs[k], r.expertLetterProbs[2 * 4 + k]);
    EXPECT_EQ(r.prediction, r.expertPrediction[2]);
    EXPECT_EQ(r.mixtureEntropy, r.expertEntropy[2]);
    EXPECT_EQ(r.mixtureVocabChoice, r.expertVocabChoice[2]);
  }
}

TEST(Combine, EntropyGateFromStoredEntropies) {
  moe::testing::SyntheticOptions o;
  const ResultsFile src = synthetic(o);
  const ResultsFile out = combineResults(src, gateConfig("gate:\n  policy: entropy\n  temperature: 0.5\n"));
  for (size_t i = 0; i < out.rows.size(); ++i) {
    const auto& h = src.rows[i].expertEntropy;
    double z = 0;
    for (float x : h) z += std::exp(-x / 0.5);
    for (size_t e = 0; e < h.size(); ++e) EXPECT_NEAR(out.rows[i].weights[e], std::exp(-h[e] / 0.5) / z, 1e-6);
  }
}

TEST(Combine, AnswerLetterGeometricAndRefusals) {
  moe::testing::SyntheticOptions o;
  o.mixtureSpace = "answer-letters";
  const ResultsFile src = synthetic(o);
  RunConfig c = gateConfig("mode: geometric\n");
  c.givenOptions = {"mode"};
  const ResultsFile out = combineResults(src, c);
  const auto& r = out.rows[0];
  // softmax_c(sum_e w_e log q_e(c)) with w = 1/3.
  std::vector<double> s(r.numChoices, 0.0);
  double z = 0;
  for (int k = 0; k < r.numChoices; ++k) {
    for (int e = 0; e < 3; ++e) s[k] += std::log(static_cast<double>(r.expertChoiceProbs[e * 4 + k])) / 3;
    z += std::exp(s[k]);
  }
  for (int k = 0; k < r.numChoices; ++k) EXPECT_NEAR(r.mixtureChoiceProbs[k], std::exp(s[k]) / z, 1e-6);
  EXPECT_EQ(r.mixtureVocabChoice, -1);

  // Full vocabulary: geometric pooling cannot be recomputed from the letters.
  const ResultsFile full = synthetic(moe::testing::SyntheticOptions{});
  EXPECT_NE(errorOf([&] { combineResults(full, c); }).find("geometric pooling over the full vocabulary"),
            std::string::npos);
  // A router gate needs stored router scores.
  EXPECT_NE(errorOf([&] { combineResults(full, gateConfig("gate:\n  policy: router\n")); })
                .find("router scores come from the experts' forward passes"),
            std::string::npos);
}

TEST(Calibrate, ClosedFormFitAndYamlRoundTrip) {
  moe::testing::SyntheticOptions o;
  const ResultsFile val = synthetic(o, "val");
  const GateConfig g = fitCalibratedGate(val, "category", 0.25);
  // Closed form per category: softmax_e(((correct + 1) / (n + 2)) / T).
  std::map<std::string, std::string> cat;
  for (const auto& s : val.header.subjects) cat[s.subject] = s.category;
  std::map<std::string, std::vector<double>> correct;
  std::map<std::string, int> n;
  for (const auto& r : val.rows) {
    auto& c = correct[cat[r.subject]];
    c.resize(3, 0);
    ++n[cat[r.subject]];
    for (int e = 0; e < 3; ++e) c[e] += r.expertCorrect[e];
  }
  ASSERT_EQ(g.table.size(), correct.size());
  for (const auto& [k, c] : correct) {
    double z = 0;
    for (double x : c) z += std::exp((x + 1) / (n[k] + 2) / 0.25);
    for (int e = 0; e < 3; ++e) EXPECT_NEAR(g.table.at(k)[e], std::exp((c[e] + 1) / (n[k] + 2) / 0.25) / z, 1e-12);
  }
  EXPECT_EQ(g.fittedSplit, "val");
  EXPECT_EQ(g.tableExperts, val.header.experts);

  // The YAML file round-trips exactly (17 significant digits), directly and as a table_file.
  const std::string text = calibratedTableYaml(g, val);
  GateConfig back;
  applyGateYamlString(back, text, "table.yaml");
  EXPECT_EQ(back.table, g.table);
  EXPECT_EQ(back.tableDefault, g.tableDefault);
  EXPECT_EQ(back.tableExperts, g.tableExperts);
  EXPECT_EQ(back.fittedSplit, "val");
  EXPECT_EQ(gateYaml(back), gateYaml(g));
  const std::string path = tempPath(".yaml");
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f);
  std::fputs(text.c_str(), f);
  std::fclose(f);
  RunConfig c;
  applyYamlString(c, "gate:\n  policy: table\n  table_file: " + path + "\n", "cfg.yaml");
  EXPECT_EQ(c.gate.table, g.table);
  std::remove(path.c_str());

  // Applying it to the split it was fitted on is refused; to another split it is the table.
  EXPECT_NE(errorOf([&] { resolveGate(back, val.header.experts, "val", val.header.dataRoot); })
                .find("which this run evaluates"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { resolveGate(back, {"a", "b", "c"}, "test", val.header.dataRoot); })
                .find("the table was made for experts"),
            std::string::npos);
  const GateConfig ok = resolveGate(back, val.header.experts, "test", val.header.dataRoot);
  EXPECT_EQ(ok.table, g.table);
}

TEST(GateResults, AttributesAndScoresRoundTripThroughTheFile) {
  moe::testing::SyntheticOptions o;
  ResultsHeader h = moe::testing::syntheticHeader(o);
  h.gatePolicy = "router";
  h.gateConfig = "gate:\n  policy: router\n  top_k: 1\n";
  h.gateTopK = 1;
  h.gateTemperature = 0.05;
  std::vector<QuestionResult> rows = moe::testing::syntheticRows(o);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].gateScores = {0.1f * static_cast<float>(i), -0.5f, 0.25f};
    rows[i].weights = {0, 0, 0};
    rows[i].weights[i % 3] = 1;  // routed: row i to expert i % 3
  }
  rows[0].gateScores.clear();  // no scores: stored as NaN
  const std::string path = tempPath(".h5");
  {
    ResultsWriter w = ResultsWriter::create(path, h, false);
    w.append(rows);
    w.finish();
  }
  const ResultsFile back = readResults(path);
  EXPECT_EQ(back.header.gatePolicy, "router");
  EXPECT_EQ(back.header.gateConfig, h.gateConfig);
  EXPECT_EQ(back.header.gateTopK, 1);
  EXPECT_DOUBLE_EQ(back.header.gateTemperature, 0.05);
  ASSERT_EQ(back.rows.size(), rows.size());
  EXPECT_TRUE(std::isnan(back.rows[0].gateScores[0]));
  EXPECT_EQ(back.rows[5].gateScores, rows[5].gateScores);

  // Resume compares the gate.
  ResultsHeader other = h;
  other.gateConfig = "gate:\n  policy: router\n  top_k: 2\n";
  EXPECT_NE(errorOf([&] { ResultsWriter::resume(path, other); }).find("attribute 'gate_config' differs"),
            std::string::npos);

  // The report's routing section: row i went to expert i % 3.
  const RunSummary s = summarize(back);
  ASSERT_TRUE(s.routing.gated);
  const RoutingRow& all = s.routing.overall;
  EXPECT_EQ(all.n, 32);
  int64_t count[3] = {0, 0, 0}, right = 0, oracle = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    ++count[i % 3];
    right += rows[i].expertCorrect[i % 3];
    oracle += rows[i].expertCorrect[0] || rows[i].expertCorrect[1] || rows[i].expertCorrect[2];
  }
  for (int e = 0; e < 3; ++e) {
    EXPECT_NEAR(all.topShare[e], count[e] / 32.0, 1e-12);
    EXPECT_NEAR(all.meanWeight[e], count[e] / 32.0, 1e-12);
  }
  EXPECT_EQ(all.top1.correct, right);
  EXPECT_EQ(all.oracle.correct, oracle);
  EXPECT_EQ(s.routing.subjects.size(), 5u);
  const std::string text = formatReport(back, s, "text");
  EXPECT_NE(text.find("routing (gate router, top_k 1)"), std::string::npos) << text;
  EXPECT_NE(formatReport(back, s, "json").find("\"gate_top1_accuracy\""), std::string::npos);
  EXPECT_NE(formatReport(back, s, "csv").find("routing_section,name,n"), std::string::npos);
  EXPECT_NE(formatReport(back, s, "markdown").find("### routing (gate router)"), std::string::npos);
  // The summary group carries the same table: row 0 overall, gate top-1 right count.
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GT(H5Lexists(f, "summary/routing", H5P_DEFAULT), 0);
  std::vector<int64_t> top1(1 + s.routing.categories.size() + s.routing.subjects.size());
  hid_t d = H5Dopen2(f, "summary/routing/gate_top1_correct", H5P_DEFAULT);
  ASSERT_GE(d, 0);
  ASSERT_GE(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, top1.data()), 0);
  EXPECT_EQ(top1[0], right);
  H5Dclose(d);
  H5Fclose(f);
  std::remove(path.c_str());
}

TEST(GateResults, UngatedFilesHaveNoRoutingSection) {
  moe::testing::SyntheticOptions o;
  const ResultsFile f = synthetic(o);
  const RunSummary s = summarize(f);
  EXPECT_FALSE(s.routing.gated);
  EXPECT_EQ(formatReport(f, s, "text").find("routing"), std::string::npos);
}
