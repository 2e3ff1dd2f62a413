// The run's cost accounting in the results file: groups `ranks` (per rank and segment) and
// `timing` (per batch) written by ResultsWriter::appendCosts, read back by readResults, summed
// over a resumed run's segments by summarizeCosts, and the report's cost table and straggler.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>

#include "coordinator/report.h"
#include "coordinator/results.h"
#include "test_results_synthetic.h"
#include "test_util.h"

using namespace moe;
using moe::test::errorOf;
using moe::testing::SyntheticOptions;
using moe::testing::syntheticHeader;
using moe::testing::syntheticRows;

namespace {

std::string tempPath(const std::string& name) {
  return ::testing::TempDir() + "moe_costs_" + std::to_string(getpid()) + "_" + name;
}

RankCost cost(int32_t rank, int32_t expert, double forward, double collective, int64_t prompt, int64_t cached) {
  RankCost c;
  c.rank = rank;
  c.group = rank / 3;
  c.expert = expert;
  c.host = "node" + std::to_string(rank);
  c.device = "cpu fp32";
  c.model = "/m/expert-" + std::to_string(expert);
  c.modelBytes = 1048576 * (expert + 1);
  c.batches = 2;
  c.questions = 7;
  c.promptTokens = prompt;
  c.cachedTokens = cached;
  c.computedTokens = prompt - cached;
  c.paddedTokens = prompt + 5;
  c.forwardSeconds = forward;
  c.tokenizeSeconds = 0.25;
  c.gateSeconds = 0;
  c.collectiveSeconds = collective;
  c.waitSeconds = 0.5;
  c.writeSeconds = rank == 0 ? 0.125 : 0;
  c.wallSeconds = forward + collective + 1;
  return c;
}

BatchTiming timing(int32_t group, int32_t questions, int64_t firstRow, double forwardA, double forwardB) {
  BatchTiming t;
  t.group = group;
  t.subject = 1;
  t.questions = questions;
  t.firstRow = firstRow;
  t.promptTokens = {100, 120, 90};
  t.computedTokens = {100, 100, 90};
  t.cachedTokens = {0, 20, 0};
  t.tokenizeSeconds = {0.01, 0.02, 0.03};
  t.forwardSeconds = {forwardA, forwardB, 0.5};
  t.waitSeconds = 0.001;
  t.reduceSeconds = 0.2;
  t.batchSeconds = 2.5;
  t.writeSeconds = 0.004;
  return t;
}

ResultsWriter writeRun(const std::string& path) {
  SyntheticOptions o;
  ResultsWriter w = ResultsWriter::create(path, syntheticHeader(o), true);
  auto rows = syntheticRows(o);
  rows.resize(10);
  w.append(rows);
  return w;
}

TEST(Costs, RoundTripOfRanksAndTiming) {
  const std::string path = tempPath("roundtrip.h5");
  {
    ResultsWriter w = writeRun(path);
    EXPECT_EQ(w.segment(), 0);
    w.appendCosts({cost(0, 0, 3.0, 1.0, 400, 0), cost(1, 1, 4.5, 0.5, 500, 100), cost(2, 2, 2.0, 2.0, 300, 0)},
                  {timing(0, 4, 0, 1.0, 1.5), timing(0, 6, 4, 2.0, 3.0)});
    w.finish();
  }
  const ResultsFile f = readResults(path);
  ASSERT_EQ(f.ranks.size(), 3u);
  const RankCost& r1 = f.ranks[1];
  EXPECT_EQ(r1.segment, 0);
  EXPECT_EQ(r1.rank, 1);
  EXPECT_EQ(r1.expert, 1);
  EXPECT_EQ(r1.host, "node1");
  EXPECT_EQ(r1.device, "cpu fp32");
  EXPECT_EQ(r1.model, "/m/expert-1");
  EXPECT_EQ(r1.modelBytes, 2097152);
  EXPECT_EQ(r1.promptTokens, 500);
  EXPECT_EQ(r1.computedTokens, 400);
  EXPECT_EQ(r1.cachedTokens, 100);
  EXPECT_EQ(r1.paddedTokens, 505);
  EXPECT_DOUBLE_EQ(r1.forwardSeconds, 4.5);
  EXPECT_DOUBLE_EQ(r1.tokensPerSecond(), 400 / 4.5);
  EXPECT_DOUBLE_EQ(f.ranks[0].writeSeconds, 0.125);
  ASSERT_EQ(f.timing.size(), 2u);
  EXPECT_EQ(f.timing[1].firstRow, 4);
  EXPECT_EQ(f.timing[1].questions, 6);
  EXPECT_EQ(f.timing[1].cachedTokens, (std::vector<int64_t>{0, 20, 0}));
  EXPECT_EQ(f.timing[1].forwardSeconds, (std::vector<double>{2.0, 3.0, 0.5}));
  EXPECT_DOUBLE_EQ(f.timing[0].reduceSeconds, 0.2);
  std::remove(path.c_str());
}

TEST(Costs, ResumedSegmentsAccumulateAndTheReportSumsThem) {
  const std::string path = tempPath("segments.h5");
  const SyntheticOptions o;
  const auto rows = syntheticRows(o);
  {
    ResultsWriter w = ResultsWriter::create(path, syntheticHeader(o), true);
    w.append(std::vector<QuestionResult>(rows.begin(), rows.begin() + 10));
    w.appendCosts({cost(0, 0, 3.0, 1.0, 400, 0), cost(1, 1, 1.0, 3.0, 500, 100), cost(2, 2, 2.0, 2.0, 300, 0)},
                  {timing(0, 10, 0, 1.0, 1.5)});
    // stopped: closed without finish()
  }
  {
    ResultsWriter w = ResultsWriter::resume(path, syntheticHeader(o));
    EXPECT_EQ(w.segment(), 1);
    w.append(std::vector<QuestionResult>(rows.begin() + 10, rows.end()));
    RankCost a = cost(0, 0, 1.0, 0.5, 100, 0), b = cost(1, 1, 4.0, 0.25, 200, 50), c = cost(2, 2, 1.0, 1.0, 50, 0);
    for (RankCost* x : {&a, &b, &c}) x->segment = 1;
    b.host = "node9";  // the resumed segment ran elsewhere
    w.appendCosts({a, b, c}, {timing(0, 22, 10, 2.0, 5.0)});
    w.finish();
  }
  const ResultsFile f = readResults(path);
  ASSERT_EQ(f.ranks.size(), 6u);
  EXPECT_EQ(f.ranks[3].segment, 1);
  ASSERT_EQ(f.timing.size(), 2u);
  EXPECT_EQ(f.timing[1].firstRow, 10);

  const CostSummary s = summarizeCosts(f);
  EXPECT_TRUE(s.recorded);
  EXPECT_EQ(s.segments, 2);
  ASSERT_EQ(s.ranks.size(), 3u);
  EXPECT_EQ(s.ranks[1].promptTokens, 700);
  EXPECT_EQ(s.ranks[1].cachedTokens, 150);
  EXPECT_EQ(s.ranks[1].computedTokens, 550);
  EXPECT_DOUBLE_EQ(s.ranks[1].forwardSeconds, 5.0);
  EXPECT_EQ(s.ranks[1].batches, 4);
  EXPECT_EQ(s.ranks[1].host, "node9");
  EXPECT_DOUBLE_EQ(s.ranks[1].tokensPerSecond(), 550 / 5.0);
  // Forward seconds: rank 0 4.0, rank 1 5.0, rank 2 3.0 -> rank 1.
  EXPECT_EQ(s.straggler, 1);
  EXPECT_EQ(s.batches, 2);
  EXPECT_DOUBLE_EQ(s.meanForward, (1.5 + 5.0) / 2);  // the slowest expert of each batch
  EXPECT_DOUBLE_EQ(s.meanTokenize, 0.03);

  const std::string text = formatReport(f, "text");
  EXPECT_NE(text.find("costs (2 segments"), std::string::npos) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("straggler: rank 1 \\(expert [^,]+, group 0, on node9\\): the most "
                                                 "forward time, 5\\.000 s, and 4\\.250 s idle")))
      << text;
  // Rank 1's row: 700 prompt, 550 computed, 150 cached tokens, 110.0 tok/s.
  EXPECT_TRUE(std::regex_search(text, std::regex("\\n +1 +0 .* 700 +550 +150 +5\\.000 +110\\.0 "))) << text;
  const auto j = nlohmann::json::parse(formatReport(f, "json"));
  EXPECT_EQ(j["costs"]["straggler_rank"], 1);
  EXPECT_EQ(j["costs"]["ranks"][1]["prompt_tokens"], 700);
  EXPECT_EQ(j["costs"]["segments"], 2);
  const std::string csv = formatReport(f, "csv");
  EXPECT_NE(csv.find("\n1,0,"), std::string::npos) << csv;
  EXPECT_TRUE(std::regex_search(csv, std::regex("\\n1,0,[^\\n]*,700,550,150,5,110,[^\\n]*,1\\n"))) << csv;
  std::remove(path.c_str());
}

TEST(Costs, LeastIdleBreaksAForwardTie) {
  ResultsFile f;
  f.header = syntheticHeader(SyntheticOptions{});
  f.ranks = {cost(0, 0, 2.0, 3.0, 10, 0), cost(1, 1, 2.0, 1.0, 10, 0), cost(2, 2, 1.0, 0.0, 10, 0)};
  EXPECT_EQ(summarizeCosts(f).straggler, 1);
}

TEST(Costs, AFileWithoutCostsReadsAndReportsNotRecorded) {
  const std::string path = tempPath("old.h5");
  {
    ResultsWriter w = writeRun(path);
    w.finish();
  }
  const ResultsFile f = readResults(path);
  EXPECT_TRUE(f.ranks.empty());
  EXPECT_TRUE(f.timing.empty());
  EXPECT_FALSE(summarizeCosts(f).recorded);
  EXPECT_NE(formatReport(f, "text").find("costs: not recorded"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Costs, TimingWithTheWrongExpertCountIsRefused) {
  const std::string path = tempPath("badtiming.h5");
  ResultsWriter w = writeRun(path);
  BatchTiming t = timing(0, 4, 0, 1.0, 1.0);
  t.forwardSeconds.pop_back();
  const std::string err = errorOf([&] { w.appendCosts({}, {t}); });
  EXPECT_NE(err.find("timing/forward_seconds: a batch has 2 values, expected one per expert (3)"), std::string::npos)
      << err;
  std::remove(path.c_str());
}

}  // namespace
