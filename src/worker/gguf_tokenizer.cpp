// GGUF tokenizer metadata -> TokenizerSpec -> Tokenizer. See gguf_tokenizer.h for the contract.
// The arrays are checked here (lengths, types, merges, ids) so that every message names the GGUF
// key; Tokenizer::fromSpec checks them again for specs from other sources.
#include "worker/gguf_tokenizer.h"

#include <cstdint>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "worker/gguf.h"

namespace moe {
namespace {

const char* const kModel = "tokenizer.ggml.model";
const char* const kPre = "tokenizer.ggml.pre";
const char* const kTokens = "tokenizer.ggml.tokens";
const char* const kScores = "tokenizer.ggml.scores";
const char* const kTypes = "tokenizer.ggml.token_type";
const char* const kMerges = "tokenizer.ggml.merges";
const char* const kBos = "tokenizer.ggml.bos_token_id";
const char* const kEos = "tokenizer.ggml.eos_token_id";
const char* const kUnk = "tokenizer.ggml.unknown_token_id";
const char* const kAddBos = "tokenizer.ggml.add_bos_token";
const char* const kAddEos = "tokenizer.ggml.add_eos_token";
const char* const kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";

// llama.cpp's split regexes (llm_tokenizer_bpe), by pre-tokenizer type.
const char* const kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
// Llama 3's tokenizer.json regex with the case-insensitive group spelt out, as llama.cpp has it.
const char* const kLlama3Regex =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Regex =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct PreEntry {
  const char* name;
  GgufPreTokenizer pre;
};

const std::vector<PreEntry>& preTable() {
  static const std::vector<PreEntry> table = [] {
    const GgufPreTokenizer def{{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Regex, R"(\p{N}+)", "[0-9][0-9][0-9]"}, false, false};
    const GgufPreTokenizer llama3{{kLlama3Regex}, true, true};
    const GgufPreTokenizer qwen2{{kQwen2Regex}, false, false};
    const GgufPreTokenizer smollm{{R"(\p{N})", kGpt2Regex}, false, false};
    const GgufPreTokenizer gpt2{{kGpt2Regex}, false, false};
    return std::vector<PreEntry>{
        {"default", def},     {"llama3", llama3},      {"llama-v3", llama3},          {"llama-bpe", llama3},
        {"qwen2", qwen2},     {"deepseek-r1-qwen", qwen2}, {"stablelm2", qwen2},      {"megrez", qwen2},
        {"smollm", smollm},   {"starcoder", smollm},   {"refact", smollm},            {"command-r", smollm},
        {"codeshell", smollm}, {"exaone", smollm},     {"minerva-7b", smollm},
        {"gpt-2", gpt2},      {"phi-2", gpt2},         {"mpt", gpt2},                 {"olmo", gpt2},
        {"jais", gpt2},
    };
  }();
  return table;
}

std::string owned(std::string_view s) { return std::string(s); }

// An optional id key, checked against the vocabulary.
std::optional<int32_t> idKey(const GgufFile& f, const char* key, size_t n) {
  if (!f.has(key)) return std::nullopt;
  const int64_t id = f.getInt(key);
  MOE_CHECK(id >= 0 && static_cast<uint64_t>(id) < n, f.name(), ": ", key, " = ", id,
            " is outside the vocabulary of ", n, " tokens (", kTokens, ")");
  return static_cast<int32_t>(id);
}

bool flagKey(const GgufFile& f, const char* key, bool def) { return f.has(key) ? f.getBool(key) : def; }

void checkLength(const GgufFile& f, const char* key, size_t got, size_t n) {
  MOE_CHECK(got == n, f.name(), ": ", key, " has ", got, " entries, but ", kTokens, " has ", n,
            " (one per token expected)");
}

}  // namespace

std::optional<GgufPreTokenizer> ggufPreTokenizer(const std::string& pre) {
  for (const PreEntry& e : preTable())
    if (pre == e.name) return e.pre;
  return std::nullopt;
}

std::string ggufPreTokenizerNames() {
  std::string out;
  for (const PreEntry& e : preTable()) out += (out.empty() ? "" : ", ") + std::string(e.name);
  return out;
}

TokenizerSpec tokenizerSpecFromGguf(const GgufFile& f) {
  const std::string& file = f.name();
  MOE_CHECK(f.has(kTokens), file, ": ", kTokens, " is missing: the file carries no tokenizer");
  MOE_CHECK(f.has(kModel), file, ": ", kModel, " is missing (expected gpt2 or llama)");
  const std::string model = f.getString(kModel);

  TokenizerSpec spec;
  spec.name = file;
  if (model == "gpt2") {
    spec.kind = TokenizerKind::ByteLevelBpe;
  } else if (model == "llama") {
    spec.kind = TokenizerKind::SentencePieceBpe;
  } else {
    MOE_THROW(file, ": ", kModel, " = '", model,
              "' is not supported (supported: gpt2 = byte-level BPE, llama = SentencePiece BPE)");
  }

  const auto& tokens = f.getStringArray(kTokens);
  const size_t n = tokens.size();
  MOE_CHECK(n > 0, file, ": ", kTokens, " is empty");
  MOE_CHECK(n <= static_cast<size_t>(INT32_MAX), file, ": ", kTokens, " has ", n, " tokens (too many)");
  spec.tokens.reserve(n);
  for (std::string_view t : tokens) spec.tokens.emplace_back(t);

  if (f.has(kScores)) {
    spec.scores = f.getF32Array(kScores);
    checkLength(f, kScores, spec.scores.size(), n);
  }
  if (f.has(kTypes)) {
    const std::vector<int64_t> types = f.getIntArray(kTypes);
    checkLength(f, kTypes, types.size(), n);
    spec.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      MOE_CHECK(types[i] >= 0 && types[i] <= static_cast<int64_t>(TokenType::Byte), file, ": ", kTypes, "[", i,
                "] = ", types[i], " is not a token type (expected 0..6)");
      spec.types.push_back(static_cast<TokenType>(types[i]));
    }
  }

  if (spec.kind == TokenizerKind::ByteLevelBpe) {
    std::string pre = "default";
    if (f.has(kPre)) {
      pre = f.getString(kPre);
    } else {
      logWarn(file, ": ", kPre, " is missing; using llama.cpp's 'default' pre-tokenizer");
    }
    const auto p = ggufPreTokenizer(pre);
    MOE_CHECK(p, file, ": ", kPre, " = '", pre, "' is not a pre-tokenizer moe-dist knows (known: ",
              ggufPreTokenizerNames(), ")");
    spec.preTokenizerRegexes = p->regexes;
    spec.ignoreMerges = p->ignoreMerges;
    spec.addBos = flagKey(f, kAddBos, p->addBos);

    MOE_CHECK(f.has(kMerges), file, ": ", kMerges, " is missing (a gpt2 tokenizer merges by rank)");
    const auto& merges = f.getStringArray(kMerges);
    std::unordered_set<std::string_view> vocab(tokens.begin(), tokens.end());
    std::string merged;
    spec.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string_view m = merges[i];
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;  // as llama.cpp splits
      MOE_CHECK(sp != std::string_view::npos, file, ": ", kMerges, "[", i, "] = '", m,
                "' is not \"left right\" (two tokens separated by a space)");
      const std::string_view left = m.substr(0, sp), right = m.substr(sp + 1);
      for (std::string_view part : {left, right})
        MOE_CHECK(vocab.count(part), file, ": ", kMerges, "[", i, "] = '", m, "' names '", part,
                  "', which is not in ", kTokens);
      merged.assign(left).append(right);
      MOE_CHECK(vocab.count(merged), file, ": ", kMerges, "[", i, "] = '", m, "' makes '", merged,
                "', which is not in ", kTokens);
      spec.merges.emplace_back(owned(left), owned(right));
    }
  } else {
    MOE_CHECK(f.has(kScores), file, ": ", kScores, " is missing (a llama/SentencePiece tokenizer merges by score)");
    spec.addBos = flagKey(f, kAddBos, true);
    spec.addSpacePrefix = flagKey(f, kAddSpacePrefix, true);
  }
  spec.addEos = flagKey(f, kAddEos, false);

  spec.bosId = idKey(f, kBos, n);
  spec.eosId = idKey(f, kEos, n);
  spec.unkId = idKey(f, kUnk, n);
  if (spec.kind == TokenizerKind::SentencePieceBpe) {  // llama.cpp's defaults for SentencePiece files
    if (!f.has(kBos) && n > 1) spec.bosId = 1;
    if (!f.has(kEos) && n > 2) spec.eosId = 2;
    if (!f.has(kUnk)) spec.unkId = 0;
  }
  MOE_CHECK(!spec.addBos || spec.bosId, file, ": ", kAddBos, " is set (or implied) but ", kBos, " is missing");
  MOE_CHECK(!spec.addEos || spec.eosId, file, ": ", kAddEos, " is set but ", kEos, " is missing");
  return spec;
}

std::unique_ptr<Tokenizer> tokenizerFromGguf(const GgufFile& file) {
  return Tokenizer::fromSpec(tokenizerSpecFromGguf(file));
}

std::unique_ptr<Tokenizer> tokenizerFromGguf(const std::string& path) {
  const GgufFile file = GgufFile::open(path);
  return tokenizerFromGguf(file);
}

}  // namespace moe
