#include "coordinator/combine.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "common/error.h"
#include "common/log.h"
#include "common/version.h"
#include "coordinator/calibrate.h"
#include "coordinator/report.h"
#include "kernels/finalize.h"
#include "kernels/weighted_softmax.h"
#include "worker/gate.h"

namespace moe {
namespace {

constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();

bool given(const RunConfig& cfg, const char* name) {
  return std::find(cfg.givenOptions.begin(), cfg.givenOptions.end(), name) != cfg.givenOptions.end();
}

// The job's static weights (job.cpp staticWeights): normalised in double, stored as float.
std::vector<float> staticRow(const std::string& mode, const std::vector<double>& weights, size_t E) {
  std::vector<double> w(E, 1.0);
  if (mode != "mean" && !weights.empty()) {
    MOE_CHECK(weights.size() == E, "combine: --weights has ", weights.size(), " values for ", E, " experts");
    w = weights;
  }
  MOE_CHECK(mode != "weighted" || !weights.empty(), "combine: --mode weighted needs --weights (one per expert)");
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  MOE_CHECK(sum > 0, "combine: --weights must not all be zero");
  std::vector<float> out(E);
  for (size_t e = 0; e < E; ++e) out[e] = static_cast<float>(w[e] / sum);
  return out;
}

// The expert a row's weights select alone, or -1 when more than one has weight.
int oneHot(const float* w, size_t E) {
  int only = -1;
  for (size_t e = 0; e < E; ++e) {
    if (w[e] == 0.0f) continue;
    if (w[e] != 1.0f || only >= 0) return -1;
    only = static_cast<int>(e);
  }
  return only;
}

int argmaxChoice(const float* p, int k) {
  int best = 0;
  for (int i = 1; i < k; ++i)
    if (p[i] > p[best]) best = i;
  return best;
}

}  // namespace

ResultsFile combineResults(const ResultsFile& src, const RunConfig& cfg) {
  const ResultsHeader& sh = src.header;
  const size_t E = sh.experts.size();
  const int C = sh.maxChoices;
  const bool fullVocab = sh.mixtureSpace == "full-vocabulary";

  ResultsFile out;
  out.path = cfg.output;
  ResultsHeader& h = out.header;
  h = sh;
  h.mode = given(cfg, "mode") ? cfg.mode : sh.mode;
  h.weights = given(cfg, "weights") ? cfg.weights : sh.weights;
  h.scoring = given(cfg, "scoring") ? cfg.scoring : sh.scoring;
  MOE_CHECK(!(fullVocab && h.mode == "geometric"), "combine: ", src.path,
            " has a full-vocabulary mixture; geometric pooling over the full vocabulary, softmax(sum_e w_e "
            "log_softmax(z_e)), needs every token's log-probability, and the file stores only the answer letters' "
            "(their sum over the vocabulary does not factor through them). Use --mode mean or weighted, or run the "
            "job with --mode geometric");

  // The gate, resolved as the job resolves it (a calibrated table is fitted here).
  const GateConfig gate = resolveGate(cfg.gate, sh.experts, sh.split, sh.dataRoot, true);
  const size_t N = src.rows.size();
  std::vector<float> weights(N * E);
  if (gate.enabled()) {
    GateInputs in;
    in.rows = static_cast<int64_t>(N);
    in.experts = static_cast<int>(E);
    std::map<std::string, std::string> categoryOf;
    for (const auto& s : sh.subjects) categoryOf[s.subject] = s.category;
    for (const auto& r : src.rows) {
      in.subjects.push_back(r.subject);
      in.categories.push_back(categoryOf.at(r.subject));
      in.entropy.insert(in.entropy.end(), r.expertEntropy.begin(), r.expertEntropy.end());
    }
    if (gate.policy == "router" || gate.policy == "retrieval") {
      // The stored gate_scores were computed by the source run's router or retrieval section.
      const bool router = gate.policy == "router";
      GateConfig stored;
      if (!sh.gateConfig.empty()) applyGateYamlString(stored, sh.gateConfig, src.path + " (attribute gate_config)");
      const bool has = router ? stored.router.configured() : stored.retrieval.configured();
      MOE_CHECK(has, "combine: gate ", gate.policy, " needs the ", gate.policy, " scores of a run with a `",
                gate.policy, ":` section; ", src.path, " has none (gate ",
                sh.gatePolicy.empty() ? std::string("none") : sh.gatePolicy, "): ", gate.policy,
                " scores come from the experts' forward passes");
      const bool differs = router ? gate.router.configured() && routerYaml(gate.router) != routerYaml(stored.router)
                                  : gate.retrieval.configured() &&
                                        retrievalYaml(gate.retrieval) != retrievalYaml(stored.retrieval);
      MOE_CHECK(!differs, "combine: the ", gate.policy, " section differs from the one ", src.path,
                " was run with; its stored scores come from that one (recomputing needs the models). Leave `",
                gate.policy, ":` out to use the stored scores");
      for (size_t r = 0; r < N; ++r) {
        const auto& s = src.rows[r].gateScores;
        for (size_t e = 0; e < E; ++e)
          MOE_CHECK(s.size() == E && std::isfinite(s[e]), "combine: ", src.path, " row ", r, " (", src.rows[r].subject,
                    ", index ", src.rows[r].index, ") has no ", gate.policy, " score for expert ", e);
        in.routerScores.insert(in.routerScores.end(), s.begin(), s.end());
      }
    }
    weights = gateWeights(gate, in, h.weights);
  } else {
    const std::vector<float> row = staticRow(h.mode, h.weights, E);
    for (size_t r = 0; r < N; ++r) std::copy(row.begin(), row.end(), weights.begin() + r * E);
  }
  h.gatePolicy = gate.policy;
  h.gateConfig = gateYaml(gate);
  h.gateTopK = gate.topK;
  h.gateTemperature = gate.temperature;
  h.combinedFrom = src.path;
  h.commandLine = "moe-dist combine " + src.path;
  h.version = MOE_VERSION;
  h.startTime.clear();
  h.endTime.clear();
  h.resumeTimes.clear();
  {
    // The source's configuration with what combine changed.
    RunConfig recorded;
    try {
      applyYamlString(recorded, sh.configYaml, src.path + " (attribute config_yaml)");
    } catch (const Error&) {
      recorded = RunConfig{};
    }
    recorded.mode = h.mode;
    recorded.weights = h.weights;
    recorded.scoring = h.scoring;
    recorded.gate = gate;
    recorded.output = cfg.output;
    h.configYaml = toYaml(recorded);
  }

  const bool vocabScoring = h.scoring == "vocab";
  const bool geometric = h.mode == "geometric";
  std::vector<int32_t> identity(static_cast<size_t>(C));
  std::iota(identity.begin(), identity.end(), 0);
  out.rows.reserve(N);
  for (size_t i = 0; i < N; ++i) {
    QuestionResult r = src.rows[i];
    const float* w = &weights[i * E];
    const int k = r.numChoices;
    r.weights.assign(w, w + E);
    // The mixture over the question's letters, as computeMixture sums it (float products, float sum).
    std::vector<float> contrib(static_cast<size_t>(k), 0.0f);
    for (size_t e = 0; e < E; ++e)
      for (int c = 0; c < k; ++c) {
        if (geometric) {
          const double q = std::max(static_cast<double>(r.expertChoiceProbs[e * C + c]), static_cast<double>(FLT_MIN));
          contrib[c] += static_cast<float>(w[e] * std::log(q));
        } else {
          contrib[c] += w[e] * r.expertLetterProbs[e * C + c];
        }
      }
    std::vector<float> dist = contrib;
    if (geometric) kernels::weightedSoftmaxCpu(contrib.data(), 1, k, 1.0f, nullptr, dist.data(), nullptr, nullptr);
    r.mixtureLetterProbs.assign(C, kNaNf);
    r.mixtureChoiceProbs.assign(C, kNaNf);
    int32_t pred = 0, vocabChoice = -1;
    float entropy = 0;
    kernels::finalizeChoicesCpu(dist.data(), 1, k, identity.data(), k, C, r.mixtureLetterProbs.data(),
                                r.mixtureChoiceProbs.data(), &r.mixtureLetterMass, &pred, &vocabChoice, &entropy);
    if (fullVocab) {
      // The mixture's whole distribution is known only when one expert has all the weight.
      const int only = oneHot(w, E);
      r.mixtureEntropy = only >= 0 ? r.expertEntropy[only] : kNaNf;
      r.mixtureVocabChoice = only >= 0 ? r.expertVocabChoice[only] : -1;
      MOE_CHECK(!vocabScoring || only >= 0, "combine: ", src.path, " row ", i, " (", r.subject, ", index ", r.index,
                "): vocab scoring of a full-vocabulary mixture needs its whole-vocabulary argmax, which the stored "
                "letter probabilities do not determine unless one expert has all the weight; use --scoring letters");
    } else {
      double hsum = 0;  // the job's entropy of the letter mixture: over its renormalised choices
      for (int c = 0; c < k; ++c) {
        const double q = r.mixtureChoiceProbs[c];
        if (q > 0) hsum -= q * std::log(q);
      }
      r.mixtureEntropy = static_cast<float>(hsum);
      r.mixtureVocabChoice = -1;
    }
    r.prediction = vocabScoring ? r.mixtureVocabChoice : pred;
    r.correct = r.prediction == r.gold;
    if (h.scoring != sh.scoring)
      for (size_t e = 0; e < E; ++e) {
        r.expertPrediction[e] =
            vocabScoring ? r.expertVocabChoice[e] : argmaxChoice(&r.expertLetterProbs[e * C], k);
        r.expertCorrect[e] = r.expertPrediction[e] == r.gold ? 1 : 0;
      }
    out.rows.push_back(std::move(r));
  }
  return out;
}

int runCombineCommand(const RunConfig& cfg) {
  MOE_CHECK(cfg.positional.size() == 1,
            "combine: expected one results FILE (moe-dist combine RUN.h5 --config GATE.yaml --output NEW.h5), got ",
            cfg.positional.size(), " arguments");
  MOE_CHECK(!cfg.output.empty(), "combine: pass --output NEW.h5");
  const ResultsFile src = readResults(cfg.positional[0]);
  if (!src.complete()) logWarn(src.path, " is a partial run: combining its ", src.rows.size(), " questions");
  const ResultsFile combined = combineResults(src, cfg);
  ResultsWriter writer = ResultsWriter::create(cfg.output, combined.header, cfg.overwrite);
  constexpr size_t kChunk = 512;
  for (size_t first = 0; first < combined.rows.size(); first += kChunk) {
    const size_t last = std::min(combined.rows.size(), first + kChunk);
    writer.append(std::vector<QuestionResult>(combined.rows.begin() + first, combined.rows.begin() + last));
  }
  writer.finish();
  logInfo("wrote ", cfg.output, ": ", combined.rows.size(), " questions recombined from ", src.path);
  std::fputs(formatReport(readResults(cfg.output), "text").c_str(), stdout);
  return 0;
}

}  // namespace moe
