#include "coordinator/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"

namespace moe::stats {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double quantileSorted(const std::vector<double>& v, double q) {
  const double h = (static_cast<double>(v.size()) - 1) * q;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}
}  // namespace

Accuracy accuracy(int64_t correct, int64_t n) {
  MOE_CHECK(n >= 0 && correct >= 0 && correct <= n, "accuracy: need 0 <= correct <= n, got ", correct, " of ", n);
  Accuracy a;
  a.correct = correct;
  a.n = n;
  if (n == 0) {
    a.value = a.se = kNaN;
    return a;
  }
  a.value = static_cast<double>(correct) / static_cast<double>(n);
  a.se = std::sqrt(a.value * (1 - a.value) / static_cast<double>(n));
  return a;
}

Accuracy accuracy(const std::vector<uint8_t>& correct) {
  int64_t k = 0;
  for (uint8_t c : correct) k += c ? 1 : 0;
  return accuracy(k, static_cast<int64_t>(correct.size()));
}

MacroAverage macroAverage(const std::vector<Accuracy>& groups) {
  MacroAverage m;
  double sum = 0, var = 0;
  for (const auto& g : groups) {
    if (g.n == 0) continue;
    ++m.groups;
    m.n += g.n;
    sum += g.value;
    var += g.value * (1 - g.value) / static_cast<double>(g.n);
  }
  if (m.groups == 0) {
    m.value = m.se = kNaN;
    return m;
  }
  m.value = sum / m.groups;
  m.se = std::sqrt(var) / m.groups;
  return m;
}

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::uniform(uint64_t n) {
  // Reject the lowest 2^64 mod n values so that every residue is equally likely.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    uint64_t x = next();
    if (x >= threshold) return x % n;
  }
}

BootstrapCi pairedBootstrap(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int resamples,
                            uint64_t seed, double level) {
  MOE_CHECK(a.size() == b.size(), "paired bootstrap: the two predictors have ", a.size(), " and ", b.size(),
            " outcomes; expected the same questions");
  MOE_CHECK(resamples > 0, "paired bootstrap: resamples must be > 0, got ", resamples);
  MOE_CHECK(level > 0 && level < 1, "paired bootstrap: level must be in (0, 1), got ", level);
  BootstrapCi ci;
  ci.level = level;
  ci.resamples = resamples;
  ci.seed = seed;
  const size_t n = a.size();
  if (n == 0) {
    ci.difference = ci.low = ci.high = kNaN;
    return ci;
  }
  std::vector<int8_t> d(n);
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    d[i] = static_cast<int8_t>((a[i] ? 1 : 0) - (b[i] ? 1 : 0));
    total += d[i];
  }
  ci.difference = static_cast<double>(total) / static_cast<double>(n);
  SplitMix64 rng(seed);
  std::vector<double> diffs(static_cast<size_t>(resamples));
  for (auto& out : diffs) {
    int64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += d[rng.uniform(n)];
    out = static_cast<double>(s) / static_cast<double>(n);
  }
  std::sort(diffs.begin(), diffs.end());
  ci.low = quantileSorted(diffs, (1 - level) / 2);
  ci.high = quantileSorted(diffs, (1 + level) / 2);
  return ci;
}

double binomialTwoSidedHalf(int64_t k, int64_t n) {
  MOE_CHECK(n >= 0 && k >= 0 && k <= n, "binomial test: need 0 <= k <= n, got k=", k, ", n=", n);
  if (n == 0) return 1;
  const int64_t m = std::min(k, n - k);
  // P[X <= m] summed in log space so that large n does not overflow.
  const double logNorm = std::lgamma(static_cast<double>(n) + 1) - static_cast<double>(n) * std::log(2.0);
  double tail = 0;
  for (int64_t i = 0; i <= m; ++i)
    tail += std::exp(logNorm - std::lgamma(static_cast<double>(i) + 1) - std::lgamma(static_cast<double>(n - i) + 1));
  return std::min(1.0, 2 * tail);
}

double chiSquare1Survival(double x) {
  if (!(x > 0)) return 1;
  return std::erfc(std::sqrt(x / 2));
}

McNemar mcnemar(int64_t b, int64_t c) {
  MOE_CHECK(b >= 0 && c >= 0, "McNemar: discordant counts must be >= 0, got b=", b, ", c=", c);
  McNemar m;
  m.b = b;
  m.c = c;
  const int64_t n = b + c;
  if (n < kMcNemarExactBelow) {
    m.exact = true;
    m.statistic = kNaN;
    m.p = binomialTwoSidedHalf(std::min(b, c), n);
  } else {
    m.exact = false;
    const double diff = std::max(0.0, std::fabs(static_cast<double>(b - c)) - 1);
    m.statistic = diff * diff / static_cast<double>(n);
    m.p = chiSquare1Survival(m.statistic);
  }
  return m;
}

McNemar mcnemar(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  MOE_CHECK(a.size() == b.size(), "McNemar: the two predictors have ", a.size(), " and ", b.size(),
            " outcomes; expected the same questions");
  int64_t nb = 0, nc = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] && !b[i]) ++nb;
    if (!a[i] && b[i]) ++nc;
  }
  return mcnemar(nb, nc);
}

}  // namespace moe::stats
