#include "worker/gate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "kernels/gate.h"

namespace moe {
namespace {

// One row of weights normalised to sum 1, in double, then float.
void normalisedRow(const std::vector<double>& w, float* out) {
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  MOE_CHECK(sum > 0, "gate: a weight row sums to 0");
  for (size_t e = 0; e < w.size(); ++e) out[e] = static_cast<float>(w[e] / sum);
}

std::string tableKeys(const GateConfig& g) {
  std::string s;
  for (const auto& [k, w] : g.table) s += (s.empty() ? "" : ", ") + k;
  return s.empty() ? "none" : s;
}

}  // namespace

int topExpert(const float* w, int experts) {
  int best = 0;
  for (int e = 1; e < experts; ++e)
    if (w[e] > w[best]) best = e;
  return best;
}

void keepTopK(float* w, int64_t rows, int experts, int k) {
  const bool cut = k > 0 && k < experts;
  std::vector<int> order(experts);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w + r * experts;
    if (cut) {
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
      for (int j = k; j < experts; ++j) row[order[j]] = 0.0f;
    }
    double sum = 0;
    for (int e = 0; e < experts; ++e) sum += row[e];
    MOE_CHECK(sum > 0, "gate: row ", r, " has no positive weight");
    for (int e = 0; e < experts; ++e) row[e] = static_cast<float>(row[e] / sum);
  }
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa <= 0 || bb <= 0) return 0.0;
  return ab / (std::sqrt(aa) * std::sqrt(bb));
}

std::vector<float> gateWeights(const GateConfig& gate, const GateInputs& in, const std::vector<double>& runWeights) {
  const int E = in.experts;
  const int64_t B = in.rows;
  MOE_CHECK(E >= 1 && B >= 0, "gate: bad shape [", B, ", ", E, "]");
  MOE_CHECK(gate.topK >= 0 && gate.topK <= E, "gate: top_k is ", gate.topK, " but there are only ", E, " experts");
  std::vector<float> w(static_cast<size_t>(B) * E);
  const std::string& p = gate.policy;

  if (p == "entropy" || p == "router" || p == "retrieval") {
    const std::vector<float>& src = p == "entropy" ? in.entropy : in.routerScores;
    MOE_CHECK(static_cast<int64_t>(src.size()) == B * E, "gate ", p, ": ", src.size(), " ",
              p == "entropy" ? "entropies" : "gate scores", " for ", B, " questions x ", E, " experts");
    std::vector<float> scores(src.size());
    for (size_t i = 0; i < src.size(); ++i) scores[i] = p == "entropy" ? -src[i] : src[i];
    const int k = gate.topK > 0 ? gate.topK : E;
    kernels::gateTopKCpu(scores.data(), B, E, E, 1, static_cast<float>(gate.temperature), k, w.data(), nullptr);
    return w;
  }

  if (p == "uniform" || p == "static") {
    std::vector<double> row(E, 1.0);
    if (p == "static") {
      const std::vector<double>& src = !gate.weights.empty() ? gate.weights : runWeights;
      if (!src.empty()) {
        MOE_CHECK(static_cast<int>(src.size()) == E, "gate static: ", src.size(), " weights for ", E, " experts");
        row = src;
      }
    }
    for (int64_t b = 0; b < B; ++b) normalisedRow(row, &w[b * E]);
  } else if (p == "table" || p == "calibrated") {
    const bool bySubject = gate.by == "subject";
    const auto& keys = bySubject ? in.subjects : in.categories;
    MOE_CHECK(static_cast<int64_t>(keys.size()) == B, "gate ", p, ": ", keys.size(), " ", gate.by,
              " names for ", B, " questions");
    for (int64_t b = 0; b < B; ++b) {
      auto it = gate.table.find(keys[b]);
      const std::vector<double>* row = it != gate.table.end() ? &it->second : nullptr;
      if (!row) {
        MOE_CHECK(!gate.tableDefault.empty(), "gate ", p, ": ", gate.by, " '", keys[b],
                  "' is not in the table (rows: ", tableKeys(gate), ") and there is no `default` row");
        row = &gate.tableDefault;
      }
      MOE_CHECK(static_cast<int>(row->size()) == E, "gate ", p, ": the row for '", keys[b], "' has ", row->size(),
                " weights for ", E, " experts");
      normalisedRow(*row, &w[b * E]);
    }
  } else {
    MOE_THROW("gate: unknown policy '", p, "'");
  }
  keepTopK(w.data(), B, E, gate.topK);
  return w;
}

}  // namespace moe
