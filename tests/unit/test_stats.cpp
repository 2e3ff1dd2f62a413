// Statistics against closed-form and textbook values.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "coordinator/stats.h"

using namespace moe::stats;

TEST(Stats, AccuracyAndBinomialStandardError) {
  Accuracy a = accuracy(30, 40);
  EXPECT_EQ(a.correct, 30);
  EXPECT_EQ(a.n, 40);
  EXPECT_DOUBLE_EQ(a.value, 0.75);
  EXPECT_DOUBLE_EQ(a.se, std::sqrt(0.75 * 0.25 / 40));
  Accuracy b = accuracy(std::vector<uint8_t>{1, 0, 1, 1});
  EXPECT_DOUBLE_EQ(b.value, 0.75);
  EXPECT_DOUBLE_EQ(b.se, std::sqrt(0.75 * 0.25 / 4));
  EXPECT_DOUBLE_EQ(accuracy(10, 10).se, 0.0);
  EXPECT_TRUE(std::isnan(accuracy(0, 0).value));
  EXPECT_THROW(accuracy(5, 4), moe::Error);
}

TEST(Stats, MacroAverageSkipsEmptyGroupsAndPropagatesErrors) {
  // Subjects 0.5 (n=100), 0.8 (n=25), empty: mean 0.65; se = sqrt(.25/100 + .16/25) / 2.
  MacroAverage m = macroAverage({accuracy(50, 100), accuracy(20, 25), accuracy(0, 0)});
  EXPECT_EQ(m.groups, 2);
  EXPECT_EQ(m.n, 125);
  EXPECT_DOUBLE_EQ(m.value, 0.65);
  EXPECT_NEAR(m.se, std::sqrt(0.0025 + 0.0064) / 2, 1e-15);
  EXPECT_TRUE(std::isnan(macroAverage({}).value));
}

TEST(Stats, McNemarExactForSmallDiscordantCounts) {
  // b=1, c=9: 2 * P[X <= 1], X ~ Bin(10, 1/2) = 2 * 11/1024.
  McNemar m = mcnemar(1, 9);
  EXPECT_TRUE(m.exact);
  EXPECT_DOUBLE_EQ(m.p, 22.0 / 1024.0);
  EXPECT_DOUBLE_EQ(mcnemar(9, 1).p, 22.0 / 1024.0);
  // b=c: the two-sided p-value is capped at 1; no discordant pairs: p = 1.
  EXPECT_DOUBLE_EQ(mcnemar(5, 5).p, 1.0);
  EXPECT_DOUBLE_EQ(mcnemar(0, 0).p, 1.0);
  // b=0, c=6: 2 / 64.
  EXPECT_DOUBLE_EQ(mcnemar(0, 6).p, 2.0 / 64.0);
  // The rule switches at b + c = 25.
  EXPECT_TRUE(mcnemar(12, 12).exact);
  EXPECT_FALSE(mcnemar(12, 13).exact);
}

TEST(Stats, McNemarChiSquareWithContinuityCorrection) {
  // Wikipedia's McNemar example table (b=121, c=59): (|121-59| - 1)^2 / 180 = 3721/180.
  McNemar m = mcnemar(121, 59);
  EXPECT_FALSE(m.exact);
  EXPECT_DOUBLE_EQ(m.statistic, 3721.0 / 180.0);
  EXPECT_NEAR(m.p, std::erfc(std::sqrt(3721.0 / 360.0)), 1e-15);
  EXPECT_NEAR(m.p, 5.45e-6, 0.01e-6);
  // Textbook chi-square(1) critical values.
  EXPECT_NEAR(chiSquare1Survival(3.841458820694124), 0.05, 1e-12);
  EXPECT_NEAR(chiSquare1Survival(6.634896601021214), 0.01, 1e-12);
  EXPECT_DOUBLE_EQ(chiSquare1Survival(0), 1.0);
  // From paired outcomes: a right/b wrong on 3 questions, the reverse on 1.
  McNemar v = mcnemar(std::vector<uint8_t>{1, 1, 1, 0, 1, 0}, std::vector<uint8_t>{0, 0, 0, 1, 1, 0});
  EXPECT_EQ(v.b, 3);
  EXPECT_EQ(v.c, 1);
  EXPECT_DOUBLE_EQ(v.p, 2 * 5.0 / 16.0);
}

TEST(Stats, BinomialTwoSidedLargeN) {
  // n = 100, k = 40: 2 * P[X <= 40] = 0.056887933640980 (R: binom.test(40, 100)$p.value).
  EXPECT_NEAR(binomialTwoSidedHalf(40, 100), 0.05688793364098, 1e-12);
}

TEST(Stats, BootstrapOfIdenticalPredictorsIsZero) {
  std::vector<uint8_t> a = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0};
  BootstrapCi ci = pairedBootstrap(a, a);
  EXPECT_EQ(ci.difference, 0.0);
  EXPECT_EQ(ci.low, 0.0);
  EXPECT_EQ(ci.high, 0.0);
  EXPECT_EQ(ci.resamples, kBootstrapResamples);
  EXPECT_EQ(ci.seed, kBootstrapSeed);
}

TEST(Stats, BootstrapIsDeterministicAndMatchesTheNormalApproximation) {
  // n = 2000 paired questions: a right & b wrong on 300, the reverse on 200, so the difference is
  // 0.05 with standard error sqrt((b + c)/n - d^2) / sqrt(n).
  const size_t n = 2000;
  std::vector<uint8_t> a(n, 0), b(n, 0);
  for (size_t i = 0; i < 300; ++i) a[i] = 1;
  for (size_t i = 300; i < 500; ++i) b[i] = 1;
  for (size_t i = 500; i < 1200; ++i) a[i] = b[i] = 1;
  BootstrapCi ci = pairedBootstrap(a, b);
  EXPECT_DOUBLE_EQ(ci.difference, 0.05);
  const double se = std::sqrt((500.0 / n - 0.05 * 0.05) / n);
  EXPECT_NEAR(ci.low, 0.05 - 1.959964 * se, 0.15 * se);
  EXPECT_NEAR(ci.high, 0.05 + 1.959964 * se, 0.15 * se);
  BootstrapCi again = pairedBootstrap(a, b);
  EXPECT_EQ(ci.low, again.low);
  EXPECT_EQ(ci.high, again.high);
  BootstrapCi otherSeed = pairedBootstrap(a, b, kBootstrapResamples, kBootstrapSeed + 1);
  EXPECT_NE(ci.low, otherSeed.low);
  EXPECT_THROW(pairedBootstrap(a, std::vector<uint8_t>(3)), moe::Error);
  EXPECT_TRUE(std::isnan(pairedBootstrap({}, {}).low));
}

TEST(Stats, SplitMix64KnownSequenceAndUnbiasedRange) {
  // Reference values of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
  SplitMix64 g(1234567);
  EXPECT_EQ(g.next(), 6457827717110365317ULL);
  EXPECT_EQ(g.next(), 3203168211198807973ULL);
  SplitMix64 r(1);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 30000; ++i) ++counts[r.uniform(3)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}
