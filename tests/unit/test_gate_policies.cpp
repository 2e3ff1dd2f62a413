// Gate policies (src/worker/gate.h): crafted inputs with weights known in closed form.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "worker/gate.h"
#include "test_util.h"

using moe::test::errorOf;

using moe::GateConfig;
using moe::GateInputs;

namespace {

GateConfig policy(const std::string& p, int topK = 0, double t = 1.0) {
  GateConfig g;
  g.policy = p;
  g.topK = topK;
  g.temperature = t;
  return g;
}

GateInputs shape(int64_t rows, int experts) {
  GateInputs in;
  in.rows = rows;
  in.experts = experts;
  return in;
}

void expectRow(const std::vector<float>& w, int64_t row, const std::vector<double>& want, double tol = 1e-7) {
  const size_t E = want.size();
  double sum = 0;
  for (size_t e = 0; e < E; ++e) {
    EXPECT_NEAR(w[row * E + e], want[e], tol) << "row " << row << " expert " << e;
    sum += w[row * E + e];
  }
  EXPECT_NEAR(sum, 1.0, 1e-6) << "row " << row;
}


}  // namespace

TEST(GatePolicies, UniformIsOneOverE) {
  auto w = moe::gateWeights(policy("uniform"), shape(2, 4), {});
  ASSERT_EQ(w.size(), 8u);
  expectRow(w, 0, {0.25, 0.25, 0.25, 0.25});
  expectRow(w, 1, {0.25, 0.25, 0.25, 0.25});
}

TEST(GatePolicies, StaticNormalisesGateWeightsThenRunWeights) {
  GateConfig g = policy("static");
  g.weights = {1, 3, 0};
  auto w = moe::gateWeights(g, shape(1, 3), {5, 5, 5});
  expectRow(w, 0, {0.25, 0.75, 0.0});
  // Without gate.weights the run's --weights are used.
  w = moe::gateWeights(policy("static"), shape(1, 3), {2, 1, 1});
  expectRow(w, 0, {0.5, 0.25, 0.25});
  // Without either: uniform.
  w = moe::gateWeights(policy("static"), shape(1, 2), {});
  expectRow(w, 0, {0.5, 0.5});
  EXPECT_NE(errorOf([&] { moe::gateWeights(g, shape(1, 2), {}); }).find("3 weights for 2 experts"),
            std::string::npos);
}

TEST(GatePolicies, TableByCategoryWithDefault) {
  GateConfig g = policy("table");
  g.by = "category";
  g.table["STEM"] = {3, 1};
  g.table["humanities"] = {0, 2};
  g.tableDefault = {1, 1};
  GateInputs in = shape(3, 2);
  in.subjects = {"astronomy", "philosophy", "nutrition"};
  in.categories = {"STEM", "humanities", "other"};
  auto w = moe::gateWeights(g, in, {});
  expectRow(w, 0, {0.75, 0.25});
  expectRow(w, 1, {0.0, 1.0});
  expectRow(w, 2, {0.5, 0.5});
}

TEST(GatePolicies, TableBySubjectAndMissingKeyWithoutDefault) {
  GateConfig g = policy("table");
  g.by = "subject";
  g.table["astronomy"] = {1, 4};
  GateInputs in = shape(1, 2);
  in.subjects = {"astronomy"};
  in.categories = {"STEM"};
  expectRow(moe::gateWeights(g, in, {}), 0, {0.2, 0.8});
  in.subjects = {"philosophy"};
  const std::string e = errorOf([&] { moe::gateWeights(g, in, {}); });
  EXPECT_NE(e.find("subject 'philosophy' is not in the table (rows: astronomy) and there is no `default` row"),
            std::string::npos)
      << e;
}

TEST(GatePolicies, EntropyIsSoftmaxOfMinusEntropyOverT) {
  // Entropies 0, ln 2, ln 4 at T = 1: weights proportional to 1, 1/2, 1/4.
  GateInputs in = shape(2, 3);
  in.entropy = {0.f, static_cast<float>(std::log(2.0)), static_cast<float>(std::log(4.0)),  //
                1.f, 1.f, 1.f};
  auto w = moe::gateWeights(policy("entropy"), in, {});
  expectRow(w, 0, {4.0 / 7, 2.0 / 7, 1.0 / 7});
  expectRow(w, 1, {1.0 / 3, 1.0 / 3, 1.0 / 3});
  // T = 0.5 squares the ratios: 1, 1/4, 1/16.
  w = moe::gateWeights(policy("entropy", 0, 0.5), in, {});
  expectRow(w, 0, {16.0 / 21, 4.0 / 21, 1.0 / 21});
}

TEST(GatePolicies, RouterIsSoftmaxOfScoresOverT) {
  GateInputs in = shape(1, 2);
  in.routerScores = {0.5f, -0.5f};
  // T = 0.25: exp(2) / (exp(2) + exp(-2)).
  auto w = moe::gateWeights(policy("router", 0, 0.25), in, {});
  const double a = std::exp(2.0) / (std::exp(2.0) + std::exp(-2.0));
  expectRow(w, 0, {a, 1 - a});
  in.routerScores.clear();
  EXPECT_NE(errorOf([&] { moe::gateWeights(policy("router"), in, {}); }).find("0 gate scores for 1 questions"),
            std::string::npos);
}

TEST(GatePolicies, RetrievalIsSoftmaxOfItsScores) {
  GateInputs in = shape(1, 3);
  in.routerScores = {0.9f, 0.5f, 0.7f};
  // T = 0.1, top 2: exp(9) and exp(7) renormalised.
  const double a = std::exp(9.0) / (std::exp(9.0) + std::exp(7.0));
  expectRow(moe::gateWeights(policy("retrieval", 2, 0.1), in, {}), 0, {a, 0, 1 - a}, 1e-6);
}

TEST(GatePolicies, TopKKeepsTheLargestAndRenormalises) {
  // Scores log 4, log 2, log 1, log 1 at T = 1 -> softmax 4/8, 2/8, 1/8, 1/8; top 2 -> 2/3, 1/3.
  GateInputs in = shape(1, 4);
  in.routerScores = {static_cast<float>(std::log(4.0)), static_cast<float>(std::log(2.0)), 0.f, 0.f};
  expectRow(moe::gateWeights(policy("router", 2), in, {}), 0, {2.0 / 3, 1.0 / 3, 0, 0});
  // top 3 with a tie between experts 2 and 3: the lower index stays.
  expectRow(moe::gateWeights(policy("router", 3), in, {}), 0, {4.0 / 7, 2.0 / 7, 1.0 / 7, 0});
  // Static weights: the same rule on the weights themselves.
  GateConfig g = policy("static", 2);
  g.weights = {1, 2, 2, 1};
  expectRow(moe::gateWeights(g, shape(1, 4), {}), 0, {0, 0.5, 0.5, 0});
  // top_k 1 is hard routing; uniform ties go to expert 0.
  expectRow(moe::gateWeights(policy("uniform", 1), shape(1, 3), {}), 0, {1, 0, 0});
  g.topK = 1;
  expectRow(moe::gateWeights(g, shape(1, 4), {}), 0, {0, 1, 0, 0});
  // Entropy with top_k 1: the most confident expert alone.
  GateInputs ent = shape(1, 3);
  ent.entropy = {1.2f, 0.3f, 0.9f};
  expectRow(moe::gateWeights(policy("entropy", 1), ent, {}), 0, {0, 1, 0});
}

TEST(GatePolicies, KeepTopKAndTopExpert) {
  std::vector<float> w = {0.1f, 0.4f, 0.4f, 0.1f, 0.7f, 0.1f, 0.1f, 0.1f};
  moe::keepTopK(w.data(), 2, 4, 1);
  expectRow(w, 0, {0, 1, 0, 0});
  expectRow(w, 1, {1, 0, 0, 0});
  const float tie[] = {0.3f, 0.3f, 0.4f, 0.4f};
  EXPECT_EQ(moe::topExpert(tie, 4), 2);
  EXPECT_EQ(moe::topExpert(tie, 2), 0);
}

TEST(GatePolicies, Cosine) {
  const float a[] = {1, 0, 0}, b[] = {1, 1, 0}, z[] = {0, 0, 0}, c[] = {-2, 0, 0};
  EXPECT_NEAR(moe::cosine(a, b, 3), 1 / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(moe::cosine(a, z, 3), 0.0);
  EXPECT_NEAR(moe::cosine(a, c, 3), -1.0, 1e-12);
}

TEST(GatePolicies, UnknownPolicyAndBadTopK) {
  EXPECT_NE(errorOf([] { moe::gateWeights(policy("oracle"), shape(1, 2), {}); }).find("unknown policy 'oracle'"),
            std::string::npos);
  EXPECT_NE(errorOf([] { moe::gateWeights(policy("uniform", 3), shape(1, 2), {}); }).find("top_k is 3"),
            std::string::npos);
}
