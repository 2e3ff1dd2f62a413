// computeMixture on 3 ranks (one expert each) against the same mixture computed in one process
// from all three experts' logits, for each mode and both mixture spaces.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <random>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "mpi_test_main.h"
#include "kernels/weighted_softmax.h"
#include "worker/mixture.h"

namespace {
constexpr int E = 3, B = 4, V = 37, C = 4, CH = 3;  // 3 choices used of 4

std::vector<float> logitsOf(int e) {
  std::mt19937 rng(100 + e);
  std::normal_distribution<float> n(0.f, 3.f);
  std::vector<float> x(B * V);
  for (auto& v : x) v = n(rng);
  return x;
}
std::vector<int32_t> lettersOf(int e) { return {5 + e, 11 + 2 * e, 20 - e}; }  // differ per expert

std::vector<float> weightsRows() {
  std::vector<float> w(B * E);
  for (int b = 0; b < B; ++b) {
    float raw[E] = {1.0f + b, 2.0f, 0.5f * (b + 1)};
    float s = raw[0] + raw[1] + raw[2];
    for (int e = 0; e < E; ++e) w[b * E + e] = raw[e] / s;
  }
  return w;
}

std::vector<double> softmaxRow(const std::vector<float>& x, int b) {
  std::vector<double> p(V);
  double m = -1e300, s = 0;
  for (int v = 0; v < V; ++v) m = std::max(m, static_cast<double>(x[b * V + v]));
  for (int v = 0; v < V; ++v) s += p[v] = std::exp(x[b * V + v] - m);
  for (auto& q : p) q /= s;
  return p;
}
}  // namespace

class Mixture : public ::testing::TestWithParam<std::tuple<moe::MixtureMode, bool>> {};

TEST_P(Mixture, EqualsSingleProcessComputation) {
  auto [mode, full] = GetParam();
  moe::MpiCommunicator world(MPI_COMM_WORLD);
  ASSERT_EQ(world.size(), E);
  const int me = world.rank();
  moe::MixtureSpec spec{mode, full, E, C, 1.0f};
  auto w = weightsRows();
  // Full-vocabulary mixtures need one shared token map; letter mixtures map per expert.
  auto letters = full ? lettersOf(0) : lettersOf(me);
  auto logits = logitsOf(me);
  moe::ChoiceStats mine, mix;
  moe::computeMixture(world, spec, logits.data(), B, V, letters, CH, w, me, mine, mix);

  for (int b = 0; b < B; ++b) {
    std::vector<double> expected(CH, 0.0);
    if (full) {
      std::vector<double> dist(V, 0.0);
      for (int e = 0; e < E; ++e) {
        auto p = softmaxRow(logitsOf(e), b);
        for (int v = 0; v < V; ++v)
          dist[v] += mode == moe::MixtureMode::Geometric ? w[b * E + e] * std::log(p[v]) : w[b * E + e] * p[v];
      }
      if (mode == moe::MixtureMode::Geometric) {
        double z = 0;
        for (auto& d : dist) z += d = std::exp(d);
        for (auto& d : dist) d /= z;
      }
      for (int c = 0; c < CH; ++c) expected[c] = dist[letters[c]];
    } else {
      for (int e = 0; e < E; ++e) {
        auto p = softmaxRow(logitsOf(e), b);
        auto le = lettersOf(e);
        double mass = 0;
        for (int c = 0; c < CH; ++c) mass += p[le[c]];
        for (int c = 0; c < CH; ++c)
          expected[c] += mode == moe::MixtureMode::Geometric ? w[b * E + e] * std::log(p[le[c]] / mass)
                                                             : w[b * E + e] * p[le[c]];
      }
      if (mode == moe::MixtureMode::Geometric) {
        double z = 0;
        for (auto& d : expected) z += d = std::exp(d);
        for (auto& d : expected) d /= z;
      }
    }
    double mass = 0;
    int best = 0;
    for (int c = 0; c < CH; ++c) {
      mass += expected[c];
      if (expected[c] > expected[best]) best = c;
    }
    for (int c = 0; c < CH; ++c) {
      EXPECT_NEAR(mix.letterProbs[b * C + c], expected[c], 1e-6) << "row " << b << " choice " << c;
      EXPECT_NEAR(mix.choiceProbs[b * C + c], expected[c] / mass, 1e-6);
    }
    EXPECT_TRUE(std::isnan(mix.letterProbs[b * C + 3]));
    EXPECT_EQ(mix.prediction[b], best);
    // This rank's own statistics are its softmax at its letters.
    auto p = softmaxRow(logits, b);
    for (int c = 0; c < CH; ++c) EXPECT_NEAR(mine.letterProbs[b * C + c], p[letters[c]], 1e-7);
  }
}

INSTANTIATE_TEST_SUITE_P(ModesAndSpaces, Mixture,
                         ::testing::Combine(::testing::Values(moe::MixtureMode::Mean, moe::MixtureMode::Weighted,
                                                              moe::MixtureMode::Geometric),
                                            ::testing::Bool()));

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  moe::MpiSession mpi(&argc, &argv);
  return moe::test::runAllTestsOnAllRanks(mpi.rank());
}
