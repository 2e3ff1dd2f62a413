// ExpertHost: one rank's expert: its tokenizer and model, the token ids of the answer letters in
// its vocabulary, and the per-batch work (prompts -> tokens -> last-token logits).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/batch.h"
#include "common/config.h"
#include "common/gate_config.h"
#include "worker/expert.h"

namespace moe {

class Tokenizer;
class Expert;
class WeightSource;

struct TokenizedBatch {
  std::vector<std::vector<int32_t>> ids;  // per question
  std::vector<int32_t> shots;             // shots used per question
  std::vector<int32_t> truncated;         // 1 where even 0 shots exceeded the context (left-truncated)
};

class ExpertHost {
 public:
  // Answer letters A.. up to maxChoices must each be one token. `--device cuda` runs the model on
  // cuda:(localRank % visible devices) (rankDevice in common/rank_layout.h).
  ExpertHost(const std::string& modelPath, const RunConfig& cfg, int maxChoices, int localRank = 0);
  ~ExpertHost();
  ExpertHost(const ExpertHost&) = delete;
  ExpertHost& operator=(const ExpertHost&) = delete;

  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }
  const std::string& hash() const { return hash_; }  // of config.json or the GGUF file's header
  int64_t vocabSize() const;
  // Identifies the token table (ids -> pieces): equal hashes mean one shared vocabulary.
  uint64_t vocabularyHash() const { return vocabHash_; }
  size_t maxContext() const { return maxContext_; }
  // Token id of " A", " B", ... continuing "...Answer:" (as lm-evaluation-harness splits it).
  const std::vector<int32_t>& letterTokens() const { return letterTokens_; }
  std::string device() const;
  // The model's CUDA device index, -1 when it runs on the CPU.
  int cudaDevice() const;

  // Tokenizes each question with as many shots as fit (up to `shots`), dropping from the end.
  TokenizedBatch tokenize(const Batch& batch, int shots) const;
  // Last-token logits [B * vocab]; with `hidden`, the last hidden states [B * hiddenSize()] too.
  void forward(const TokenizedBatch& tokens, std::vector<float>& logits, std::vector<float>* hidden = nullptr);
  // The same, the logits left on the model's device in its dtype (Expert::forward's second form),
  // for the device mixture.
  void forward(const TokenizedBatch& tokens, ModelLogits& logits, std::vector<float>* hidden = nullptr);
  int64_t hiddenSize() const;
  // The model's statistics of its last forward pass (the last forward() call, or a gate's own pass)
  // and its parameter bytes, for the run's cost accounting.
  const ForwardStats& lastForwardStats() const;
  int64_t modelBytes() const;

  // Router gate (gate.router, mergekit-moe style): this expert's centroids, computed once from its
  // own prompts (`expert` selects its entry of router.experts):
  //   hidden       the mean over the prompts of the final hidden state at each prompt's last token;
  //                a question is the hidden state at the last token of its evaluated prompt
  //   cheap_embed  the mean over the prompts of the mean token embedding (no forward pass); a
  //                question is the mean token embedding of its zero-shot prompt
  //   random       a seeded Gaussian vector in the hidden space (seed and expert index), no prompts
  // A question's score = cos(question, positive centroid) - cos(question, negative centroid)
  // (the second term only with negative_prompts).
  void prepareRouter(const RouterConfig& router, int expert);
  bool routerNeedsHidden() const { return routerMode_ == "hidden" || routerMode_ == "random"; }
  // Scores [B] for a batch; `hidden` from forward() (hidden and random modes).
  std::vector<float> routerScores(const Batch& batch, const std::vector<float>& hidden) const;

  // Retrieval of Experts (gate.retrieval): this expert's exemplars as its final hidden states of
  // each exemplar text; a question's score is the mean cosine of its `neighbours` nearest
  // exemplars, the question as the hidden state of its zero-shot text (question, choices,
  // "Answer:"), an extra forward pass of those short texts per batch.
  void prepareRetrieval(const RetrievalConfig& retrieval, int expert);
  std::vector<float> retrievalScores(const Batch& batch);

 private:
  std::vector<float> meanEmbedding(const std::vector<int32_t>& ids) const;
  std::vector<float> centroid(const std::vector<std::string>& prompts);
  // Final hidden states [texts * hiddenSize()] of texts (each with BOS, left-truncated to the context).
  std::vector<float> hiddenStates(const std::vector<std::string>& texts);

  std::string path_, name_, hash_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Expert> model_;
  std::vector<int32_t> letterTokens_;
  uint64_t vocabHash_ = 0;
  size_t maxContext_ = 0;
  std::string routerMode_;                     // "" = no router
  std::vector<float> positive_, negative_;     // centroids; negative_ empty without negative prompts
  std::unique_ptr<WeightSource> embeddings_;   // cheap_embed: the checkpoint, for embedding rows
  std::string embeddingName_;
  std::vector<float> exemplars_;  // retrieval: [M * hiddenSize()]
  int neighbours_ = 1;
};

// FNV-1a 64 as 16 hex digits.
std::string hashHex(const std::string& bytes);

}  // namespace moe
