#include "job/expert_host.h"

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "worker/expert.h"
#include "worker/model_path.h"
#include "worker/tokenizer.h"

namespace moe {
namespace {

std::string readWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MOE_CHECK(f, "cannot read '", path, "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
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

ExpertHost::ExpertHost(const std::string& modelPath, const RunConfig& cfg, int maxChoices) : path_(modelPath) {
  const ModelPath mp = resolveModelPath(modelPath);
  name_ = mp.name;
  MOE_CHECK(mp.format == ModelFormat::HuggingFaceFolder, "model '", modelPath,
            "': GGUF files are not supported by the run pipeline yet (use a Hugging Face model folder)");
  hash_ = hashHex(readWholeFile(modelPath + "/config.json"));
  tokenizer_ = Tokenizer::fromModelFolder(modelPath);
  model_ = Expert::load(modelPath, EngineOptions{cfg.device, cfg.dtype, cfg.threads});
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

void ExpertHost::forward(const TokenizedBatch& tokens, std::vector<float>& logits) {
  model_->forward(tokens.ids, logits);
}

}  // namespace moe
