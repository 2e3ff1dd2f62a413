#include "test_results_synthetic.h"

#include <cmath>

#include "coordinator/categories.h"
#include "coordinator/stats.h"

namespace moe::testing {
namespace {

struct SubjectSpec {
  const char* name;
  int questions;
  int choices;
};
const std::vector<SubjectSpec>& subjectSpecs() {
  static const std::vector<SubjectSpec> s = {
      {"abstract_algebra", 9, 4}, {"philosophy", 7, 4}, {"sociology", 6, 4}, {"nutrition", 5, 4},
      {"three_choice_quiz", 5, 3}};
  return s;
}

double uniform01(stats::SplitMix64& rng) { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; }

int argmax(const std::vector<float>& v, int k) {
  int best = 0;
  for (int i = 1; i < k; ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

std::vector<float> staticWeights(const SyntheticOptions& o) {
  std::vector<float> w(o.experts, 1.0f / static_cast<float>(o.experts));
  if (o.mode == "weighted") {
    float total = 0;
    for (int e = 0; e < o.experts; ++e) total += static_cast<float>(e + 1);
    for (int e = 0; e < o.experts; ++e) w[e] = static_cast<float>(e + 1) / total;
  }
  return w;
}

}  // namespace

ResultsHeader syntheticHeader(const SyntheticOptions& o) {
  ResultsHeader h;
  for (int e = 0; e < o.experts; ++e) {
    h.models.push_back("/models/expert-" + std::to_string(e));
    h.modelHashes.push_back("sha256:" + std::string(8, static_cast<char>('a' + e)));
    h.experts.push_back("expert" + std::to_string(e));
  }
  h.mode = o.mode;
  if (o.mode == "weighted")
    for (float w : staticWeights(o)) h.weights.push_back(static_cast<double>(w) * 6);  // unnormalised as given
  h.scoring = o.scoring;
  h.promptStyle = "original";
  h.mixtureSpace = o.mixtureSpace;
  h.commandLine = "moe-dist run --models ... --output synthetic.h5";
  h.configYaml = "mode: \"" + o.mode + "\"\nshots: 5\n";
  h.ranks = o.experts;
  for (int e = 0; e < o.experts; ++e) h.devices.push_back("cpu on testhost");
  h.split = "test";
  h.shots = 5;
  h.dataRoot = "/data/mmlu";
  h.maxChoices = 4;
  for (const auto& s : subjectSpecs()) h.subjects.push_back(classifySubject(s.name));
  return h;
}

std::vector<QuestionResult> syntheticRows(const SyntheticOptions& o) {
  stats::SplitMix64 rng(o.seed);
  const int E = o.experts, C = 4;
  const std::vector<float> w = staticWeights(o);
  const bool vocab = o.scoring == "vocab";
  std::vector<QuestionResult> rows;
  for (const auto& spec : subjectSpecs()) {
    for (int q = 0; q < spec.questions; ++q) {
      QuestionResult r;
      r.subject = spec.name;
      r.index = q;
      r.numChoices = spec.choices;
      r.gold = static_cast<int32_t>(rng.uniform(static_cast<uint64_t>(spec.choices)));
      r.shots = q == 0 ? 4 : 5;
      r.weights = w;
      r.expertLetterProbs.assign(E * C, NAN);
      r.expertChoiceProbs.assign(E * C, NAN);
      r.mixtureLetterProbs.assign(C, NAN);
      r.mixtureChoiceProbs.assign(C, NAN);
      std::vector<float> mixLetter(C, 0.0f);
      for (int e = 0; e < E; ++e) {
        // Expert e leans towards the gold answer with strength e-dependent: accuracies differ.
        std::vector<double> logit(spec.choices);
        for (int c = 0; c < spec.choices; ++c)
          logit[c] = 2.0 * uniform01(rng) + (c == r.gold ? 0.4 + 0.5 * e : 0.0);
        double z = 0;
        for (double x : logit) z += std::exp(x);
        const double mass = 0.55 + 0.4 * uniform01(rng);
        float massF = 0;
        std::vector<float> choice(C, NAN);
        for (int c = 0; c < spec.choices; ++c) {
          const float p = static_cast<float>(mass * std::exp(logit[c]) / z);
          r.expertLetterProbs[e * C + c] = p;
          massF += p;
          mixLetter[c] += w[e] * p;
        }
        for (int c = 0; c < spec.choices; ++c) {
          choice[c] = r.expertLetterProbs[e * C + c] / massF;
          r.expertChoiceProbs[e * C + c] = choice[c];
        }
        r.expertLetterMass.push_back(massF);
        r.expertEntropy.push_back(static_cast<float>(1.0 + 3.0 * uniform01(rng)));
        r.promptTokens.push_back(static_cast<int32_t>(300 + rng.uniform(400)));
        const int letterPred = argmax(choice, spec.choices);
        // The vocabulary argmax is the letter argmax unless a non-letter token wins (-1).
        const int32_t vocabChoice = uniform01(rng) < 0.15 ? -1 : letterPred;
        r.expertVocabChoice.push_back(vocabChoice);
        const int32_t pred = vocab ? vocabChoice : letterPred;
        r.expertPrediction.push_back(pred);
        r.expertCorrect.push_back(pred == r.gold ? 1 : 0);
      }
      float mixMass = 0;
      for (int c = 0; c < spec.choices; ++c) {
        r.mixtureLetterProbs[c] = mixLetter[c];
        mixMass += mixLetter[c];
      }
      std::vector<float> mixChoice(C, NAN);
      for (int c = 0; c < spec.choices; ++c) {
        mixChoice[c] = mixLetter[c] / mixMass;
        r.mixtureChoiceProbs[c] = mixChoice[c];
      }
      r.mixtureLetterMass = mixMass;
      r.mixtureEntropy = static_cast<float>(1.0 + 3.0 * uniform01(rng));
      const int letterPred = argmax(mixChoice, spec.choices);
      r.mixtureVocabChoice = o.mixtureSpace == "answer-letters" ? -1 : (uniform01(rng) < 0.1 ? -1 : letterPred);
      r.prediction = vocab ? r.mixtureVocabChoice : letterPred;
      r.correct = r.prediction == r.gold;
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace moe::testing
