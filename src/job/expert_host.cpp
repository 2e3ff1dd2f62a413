#include "job/expert_host.h"

#include <fstream>
#include <sstream>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "common/rank_layout.h"
#include "worker/expert.h"
#include "worker/gate.h"
#include "worker/half.h"
#include "worker/safetensors.h"
#include "worker/weights.h"
#include "worker/gguf_tokenizer.h"
#include "worker/model_path.h"
#include "worker/tokenizer.h"
#include "worker/torch/torch_runtime.h"

namespace moe {
namespace {

std::string readWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MOE_CHECK(f, "cannot read '", path, "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The first min(size, maxBytes) bytes of a file.
std::string readFilePrefix(const std::string& path, size_t maxBytes) {
  std::ifstream f(path, std::ios::binary);
  MOE_CHECK(f, "cannot read '", path, "'");
  std::string bytes(maxBytes, '\0');
  f.read(bytes.data(), static_cast<std::streamsize>(maxBytes));
  bytes.resize(static_cast<size_t>(f.gcount()));
  return bytes;
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ULL) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

// The answer letters' tokens as lm-evaluation-harness finds them: encode the context and the
// context followed by " X"; the continuation is what the longer encoding adds. It must be exactly
// one token, or the letter cannot be scored by a single next-token distribution.
std::vector<int32_t> findLetterTokens(const Tokenizer& tok, int choices, const std::string& model) {
  const std::string context = "Which is it?\nA. this\nB. that\nAnswer:";
  const auto ctx = tok.encode(context, true);
  std::vector<int32_t> letters;
  for (int c = 0; c < choices; ++c) {
    const std::string letter(1, static_cast<char>('A' + c));
    const auto whole = tok.encode(context + " " + letter, true);
    const bool prefix = whole.size() > ctx.size() && std::equal(ctx.begin(), ctx.end(), whole.begin());
    MOE_CHECK(prefix, "model '", model, "': appending the answer \" ", letter,
              "\" changes the tokenization of \"...Answer:\" itself (the tokenizer merges across the boundary); "
              "moe-dist scores answers by one next-token distribution after \"Answer:\"");
    MOE_CHECK(whole.size() == ctx.size() + 1, "model '", model, "': the answer \" ", letter,
              "\" after \"Answer:\" is ", whole.size() - ctx.size(),
              " tokens in this tokenizer, not one; moe-dist scores answers by one next-token distribution");
    letters.push_back(whole.back());
  }
  return letters;
}

}  // namespace

std::string hashHex(const std::string& bytes) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(fnv1a(bytes.data(), bytes.size())));
  return buf;
}

ExpertHost::ExpertHost(const std::string& modelPath, const RunConfig& cfg, int maxChoices, int localRank)
    : path_(modelPath) {
  const ModelPath mp = resolveModelPath(modelPath);
  name_ = mp.name;
  if (mp.format == ModelFormat::Gguf) {
    // A GGUF file's identity: its first 16 MiB (header, metadata with the tokenizer, first tensors).
    hash_ = hashHex(readFilePrefix(mp.path, size_t{16} << 20));
    tokenizer_ = tokenizerFromGguf(mp.path);
  } else {
    hash_ = hashHex(readWholeFile(modelPath + "/config.json"));
    tokenizer_ = Tokenizer::fromModelFolder(modelPath);
  }
  // The device count is asked only for cuda (a CUDA libtorch initializes the driver to answer).
  const int devices = cfg.device == "cuda" ? cudaDeviceCount() : 0;
  EngineOptions engine{rankDevice(cfg.device, localRank, devices), cfg.dtype, cfg.threads};
  engine.prefixCache = !cfg.noPrefixCache;
  model_ = Expert::load(modelPath, engine);
  const int64_t positions = model_->config().maxPositions;
  maxContext_ = cfg.maxContext > 0 ? static_cast<size_t>(cfg.maxContext)
                                   : static_cast<size_t>(positions > 0 ? positions : 2048);
  MOE_CHECK(tokenizer_->vocabSize() <= model_->vocabSize(), "model '", modelPath, "': the tokenizer has ",
            tokenizer_->vocabSize(), " tokens but the model's vocabulary only ", model_->vocabSize());
  letterTokens_ = findLetterTokens(*tokenizer_, maxChoices, modelPath);

  uint64_t h = 1469598103934665603ULL;
  const int64_t modelVocab = model_->vocabSize();
  h = fnv1a(&modelVocab, sizeof(modelVocab), h);
  for (int32_t id = 0; id < tokenizer_->vocabSize(); ++id) {
    std::string piece;
    try {
      piece = tokenizer_->idToToken(id);
    } catch (const Error&) {
      piece = "\x01<gap>";
    }
    h = fnv1a(piece.data(), piece.size() + 1, h);  // with the terminating NUL as separator
  }
  vocabHash_ = h;
}

ExpertHost::~ExpertHost() = default;

int64_t ExpertHost::vocabSize() const { return model_->vocabSize(); }

std::string ExpertHost::device() const { return model_->device() + " " + model_->dtype(); }

int ExpertHost::cudaDevice() const { return model_->cudaDevice(); }

TokenizedBatch ExpertHost::tokenize(const Batch& batch, int shots) const {
  TokenizedBatch out;
  for (size_t q = 0; q < batch.questions.size(); ++q) {
    size_t k = std::min(static_cast<size_t>(std::max(shots, 0)), batch.availableShots(q));
    std::vector<int32_t> ids = tokenizer_->encode(batch.prompt(q, k), true);
    // As MMLU's evaluate.py: drop shots from the end while the prompt is longer than the context.
    while (ids.size() > maxContext_ && k > 0) ids = tokenizer_->encode(batch.prompt(q, --k), true);
    int32_t truncated = 0;
    if (ids.size() > maxContext_) {
      logWarn("model '", name_, "': question ", batch.questions[q].id, " is ", ids.size(),
              " tokens with 0 shots, over the context of ", maxContext_, ": keeping its last ", maxContext_);
      ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(maxContext_));
      truncated = 1;
    }
    out.ids.push_back(std::move(ids));
    out.shots.push_back(static_cast<int32_t>(k));
    out.truncated.push_back(truncated);
  }
  return out;
}

void ExpertHost::forward(const TokenizedBatch& tokens, std::vector<float>& logits, std::vector<float>* hidden) {
  model_->forward(tokens.ids, logits, hidden);
}

void ExpertHost::forward(const TokenizedBatch& tokens, ModelLogits& logits, std::vector<float>* hidden) {
  model_->forward(tokens.ids, logits, hidden);
}

int64_t ExpertHost::hiddenSize() const { return model_->hiddenSize(); }

const ForwardStats& ExpertHost::lastForwardStats() const { return model_->lastForwardStats(); }

int64_t ExpertHost::modelBytes() const { return model_->modelBytes(); }

// ---- router gate ---------------------------------------------------------------------------------

std::vector<float> ExpertHost::meanEmbedding(const std::vector<int32_t>& ids) const {
  const TensorMeta& m = embeddings_->meta(embeddingName_);
  const int64_t V = m.shape[0], H = m.shape[1];
  std::vector<double> acc(static_cast<size_t>(H), 0.0);
  std::vector<float> row(static_cast<size_t>(H));
  const void* raw = embeddings_->rawData(embeddingName_);
  MOE_CHECK(raw, "model '", path_, "': router mode cheap_embed reads the embedding table '", embeddingName_,
            "', which is stored as ", storageTypeName(m.type), "; it needs F32, F16 or BF16");
  for (int32_t id : ids) {
    MOE_CHECK(id >= 0 && id < V, "model '", path_, "': token ", id, " is outside the embedding table of ", V);
    const size_t off = static_cast<size_t>(id) * static_cast<size_t>(H);
    if (m.type == StorageType::F32) {
      std::memcpy(row.data(), static_cast<const float*>(raw) + off, row.size() * sizeof(float));
    } else if (m.type == StorageType::F16) {
      halfToFloat(static_cast<const uint16_t*>(raw) + off, row.data(), row.size());
    } else {
      bf16ToFloat(static_cast<const uint16_t*>(raw) + off, row.data(), row.size());
    }
    for (int64_t h = 0; h < H; ++h) acc[h] += row[h];
  }
  std::vector<float> out(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) out[h] = static_cast<float>(acc[h] / std::max<size_t>(ids.size(), 1));
  return out;
}

std::vector<float> ExpertHost::centroid(const std::vector<std::string>& prompts) {
  const int64_t H = routerMode_ == "cheap_embed" ? embeddings_->meta(embeddingName_).shape[1] : hiddenSize();
  std::vector<double> acc(static_cast<size_t>(H), 0.0);
  constexpr size_t kChunk = 8;
  for (size_t first = 0; first < prompts.size(); first += kChunk) {
    std::vector<std::vector<int32_t>> ids;
    for (size_t i = first; i < std::min(prompts.size(), first + kChunk); ++i) {
      std::vector<int32_t> t = tokenizer_->encode(prompts[i], true);
      if (t.size() > maxContext_) t.erase(t.begin(), t.end() - static_cast<std::ptrdiff_t>(maxContext_));
      MOE_CHECK(!t.empty(), "model '", path_, "': router prompt ", i, " has no tokens");
      ids.push_back(std::move(t));
    }
    if (routerMode_ == "cheap_embed") {
      for (const auto& t : ids) {
        const std::vector<float> e = meanEmbedding(t);
        for (int64_t h = 0; h < H; ++h) acc[h] += e[h];
      }
    } else {
      std::vector<float> logits, hidden;
      model_->forward(ids, logits, &hidden);
      for (size_t i = 0; i < ids.size(); ++i)
        for (int64_t h = 0; h < H; ++h) acc[h] += hidden[i * H + h];
    }
  }
  std::vector<float> out(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) out[h] = static_cast<float>(acc[h] / static_cast<double>(prompts.size()));
  return out;
}

void ExpertHost::prepareRouter(const RouterConfig& router, int expert) {
  routerMode_ = router.mode;
  positive_.clear();
  negative_.clear();
  if (router.mode == "random") {
    // SplitMix64 -> Box-Muller normals: the same vector for a seed and expert on any machine.
    uint64_t state = router.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(expert + 1));
    auto next = [&state] {
      uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      return z ^ (z >> 31);
    };
    auto uniform = [&] { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };
    positive_.resize(static_cast<size_t>(hiddenSize()));
    for (auto& x : positive_) x = static_cast<float>(std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()));
    return;
  }
  MOE_CHECK(expert >= 0 && static_cast<size_t>(expert) < router.experts.size(), "gate.router.experts has ",
            router.experts.size(), " entries; expert ", expert, " has none");
  const RouterPrompts& p = router.experts[static_cast<size_t>(expert)];
  if (router.mode == "cheap_embed") {
    const ModelPath mp = resolveModelPath(path_);
    MOE_CHECK(mp.format == ModelFormat::HuggingFaceFolder, "model '", path_,
              "': router mode cheap_embed reads the embedding table from a Hugging Face folder's safetensors");
    embeddings_ = openSafetensors(path_);
    for (const char* n : {"model.embed_tokens.weight", "transformer.wte.weight", "wte.weight"})
      if (embeddings_->has(n)) {
        embeddingName_ = n;
        break;
      }
    MOE_CHECK(!embeddingName_.empty(), "model '", path_,
              "': router mode cheap_embed found no token embedding table (model.embed_tokens.weight)");
    MOE_CHECK(embeddings_->meta(embeddingName_).shape.size() == 2, "model '", path_, "': tensor ", embeddingName_,
              " is not two-dimensional");
  }
  positive_ = centroid(p.positive);
  if (!p.negative.empty()) negative_ = centroid(p.negative);
  logInfo("model '", name_, "': router ", router.mode, " centroids from ", p.positive.size(), " positive and ",
          p.negative.size(), " negative prompts");
}

std::vector<float> ExpertHost::hiddenStates(const std::vector<std::string>& texts) {
  const int64_t H = hiddenSize();
  std::vector<float> out;
  out.reserve(texts.size() * static_cast<size_t>(H));
  constexpr size_t kChunk = 8;
  for (size_t first = 0; first < texts.size(); first += kChunk) {
    std::vector<std::vector<int32_t>> ids;
    for (size_t i = first; i < std::min(texts.size(), first + kChunk); ++i) {
      std::vector<int32_t> t = tokenizer_->encode(texts[i], true);
      if (t.size() > maxContext_) t.erase(t.begin(), t.end() - static_cast<std::ptrdiff_t>(maxContext_));
      MOE_CHECK(!t.empty(), "model '", path_, "': text ", i, " has no tokens");
      ids.push_back(std::move(t));
    }
    std::vector<float> logits, hidden;
    model_->forward(ids, logits, &hidden);
    out.insert(out.end(), hidden.begin(), hidden.end());
  }
  return out;
}

void ExpertHost::prepareRetrieval(const RetrievalConfig& retrieval, int expert) {
  MOE_CHECK(expert >= 0 && static_cast<size_t>(expert) < retrieval.experts.size(), "gate.retrieval.experts has ",
            retrieval.experts.size(), " entries; expert ", expert, " has none");
  const std::vector<std::string>& texts = retrieval.experts[static_cast<size_t>(expert)].exemplars;
  MOE_CHECK(!texts.empty(), "gate.retrieval.experts[", expert, "]: no exemplars");
  exemplars_ = hiddenStates(texts);
  neighbours_ = std::min<int>(retrieval.neighbours, static_cast<int>(texts.size()));
  logInfo("model '", name_, "': retrieval over ", texts.size(), " exemplars, ", neighbours_, " nearest");
}

std::vector<float> ExpertHost::retrievalScores(const Batch& batch) {
  MOE_CHECK(!exemplars_.empty(), "retrievalScores: no exemplars prepared");
  const int64_t H = hiddenSize();
  const size_t M = exemplars_.size() / static_cast<size_t>(H);
  std::vector<std::string> texts;
  for (const auto& q : batch.questions) texts.push_back(q.text);
  const std::vector<float> hidden = hiddenStates(texts);
  std::vector<float> scores(texts.size());
  std::vector<double> sims(M);
  for (size_t q = 0; q < texts.size(); ++q) {
    for (size_t m = 0; m < M; ++m) sims[m] = cosine(hidden.data() + q * H, exemplars_.data() + m * H, H);
    std::partial_sort(sims.begin(), sims.begin() + neighbours_, sims.end(), std::greater<double>());
    double sum = 0;
    for (int k = 0; k < neighbours_; ++k) sum += sims[k];
    scores[q] = static_cast<float>(sum / neighbours_);
  }
  return scores;
}

std::vector<float> ExpertHost::routerScores(const Batch& batch, const std::vector<float>& hidden) const {
  MOE_CHECK(!routerMode_.empty(), "routerScores: no router prepared");
  const size_t B = batch.questions.size();
  const int64_t H = static_cast<int64_t>(positive_.size());
  std::vector<float> scores(B);
  for (size_t q = 0; q < B; ++q) {
    std::vector<float> embedded;
    const float* x;
    if (routerMode_ == "cheap_embed") {
      embedded = meanEmbedding(tokenizer_->encode(batch.prompt(q, 0), true));
      x = embedded.data();
    } else {
      MOE_CHECK(hidden.size() == B * static_cast<size_t>(H), "routerScores: ", hidden.size(),
                " hidden values for ", B, " questions of ", H);
      x = hidden.data() + q * H;
    }
    double s = cosine(x, positive_.data(), H);
    if (!negative_.empty()) s -= cosine(x, negative_.data(), H);
    scores[q] = static_cast<float>(s);
  }
  return scores;
}

}  // namespace moe
