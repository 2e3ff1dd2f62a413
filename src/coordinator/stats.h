// Statistics for accuracy tables: binomial standard errors, macro averages, and the two paired
// comparisons a mixture-vs-expert claim needs (a bootstrap confidence interval of the accuracy
// difference and McNemar's test on the discordant questions).
//
// Everything is deterministic: the bootstrap uses its own generator (SplitMix64 with rejection
// sampling), not <random>'s distributions, whose output differs between standard libraries, so
// the same file gives the same interval on every machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe::stats {

// p = correct / n, standard error sqrt(p (1 - p) / n). n = 0: value and stderr NaN.
struct Accuracy {
  int64_t correct = 0;
  int64_t n = 0;
  double value = 0;
  double se = 0;  // standard error
};
Accuracy accuracy(int64_t correct, int64_t n);
Accuracy accuracy(const std::vector<uint8_t>& correct);

// Unweighted mean of the groups' accuracies (groups with n = 0 are left out). Its standard error
// propagates each group's binomial error: sqrt(sum_s p_s (1 - p_s) / n_s) / k, i.e. the subjects
// are fixed and the questions are the sample, as for the micro average.
struct MacroAverage {
  double value = 0;
  double se = 0;  // standard error
  int groups = 0;     // k: groups with at least one question
  int64_t n = 0;      // questions in those groups
};
MacroAverage macroAverage(const std::vector<Accuracy>& groups);

// Paired bootstrap of mean(a) - mean(b) over the same questions: `resamples` resamples of the
// question indices with replacement; the interval is the (1-level)/2 and (1+level)/2 quantiles
// of the resampled differences (linear interpolation between order statistics, as numpy's
// default). a and b hold 0/1 and have the same length; empty input gives NaNs.
struct BootstrapCi {
  double difference = 0;  // mean(a) - mean(b) on the sample itself
  double low = 0, high = 0;
  double level = 0.95;
  int resamples = 0;
  uint64_t seed = 0;
};
constexpr uint64_t kBootstrapSeed = 20240917;
constexpr int kBootstrapResamples = 10000;
BootstrapCi pairedBootstrap(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                            int resamples = kBootstrapResamples, uint64_t seed = kBootstrapSeed,
                            double level = 0.95);

// McNemar's test of a and b on paired 0/1 outcomes. b = questions a got right and b wrong,
// c = the reverse. Rule: b + c < kMcNemarExactBelow uses the exact two-sided binomial test
// (p = min(1, 2 P[X <= min(b,c)]), X ~ Bin(b+c, 1/2)); otherwise the chi-square statistic with
// continuity correction (|b - c| - 1)^2 / (b + c), one degree of freedom. b + c = 0: p = 1.
constexpr int64_t kMcNemarExactBelow = 25;
struct McNemar {
  int64_t b = 0, c = 0;
  double statistic = 0;  // chi-square value (NaN for the exact test)
  double p = 1;
  bool exact = true;
  std::string method() const { return exact ? "exact binomial" : "chi-square with continuity correction"; }
};
McNemar mcnemar(int64_t b, int64_t c);
McNemar mcnemar(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

// Two-sided exact binomial p-value for k successes in n trials at p = 1/2.
double binomialTwoSidedHalf(int64_t k, int64_t n);
// P[X > x] for X ~ chi-square with one degree of freedom: erfc(sqrt(x / 2)).
double chiSquare1Survival(double x);

// Deterministic generator for the bootstrap (SplitMix64); uniform(n) is unbiased in [0, n).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint64_t uniform(uint64_t n);

 private:
  uint64_t state_;
};

}  // namespace moe::stats
