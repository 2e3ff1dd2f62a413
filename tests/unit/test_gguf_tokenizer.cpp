// tokenizerFromGguf on small GGUF files written here (metadata only): both tokenizer kinds, the
// pre-tokenizer choice, the add_bos / add_eos / add_space_prefix flags, token types, and the errors
// for malformed tokenizer metadata. The expected ids follow from the tiny vocabularies by hand (each
// case says why). Real models: test_gguf_tokenizer_models.cpp.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/error.h"
#include "worker/gguf.h"
#include "worker/gguf_tokenizer.h"
#include "worker/tokenizer.h"

namespace {

using moe::GgufFile;
using moe::Tokenizer;
using Ids = std::vector<int32_t>;

// ---- a GGUF writer for metadata-only files -----------------------------------------------------
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
};

enum : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };

struct Kv {
  std::string key;
  std::vector<uint8_t> value;  // type and payload
};

Kv kvString(const std::string& key, const std::string& v) { return {key, Bytes().u32(kString).str(v).b}; }
Kv kvU32(const std::string& key, uint32_t v) { return {key, Bytes().u32(kU32).u32(v).b}; }
Kv kvBool(const std::string& key, bool v) {
  Bytes b;
  b.u32(kBool);
  b.b.push_back(v ? 1 : 0);
  return {key, b.b};
}
Kv kvStrings(const std::string& key, const std::vector<std::string>& v) {
  Bytes b;
  b.u32(kArray).u32(kString).u64(v.size());
  for (const auto& s : v) b.str(s);
  return {key, b.b};
}
Kv kvF32s(const std::string& key, const std::vector<float>& v) {
  Bytes b;
  b.u32(kArray).u32(kF32).u64(v.size());
  for (float f : v) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    b.u32(bits);
  }
  return {key, b.b};
}
Kv kvI32s(const std::string& key, const std::vector<int32_t>& v) {
  Bytes b;
  b.u32(kArray).u32(kI32).u64(v.size());
  for (int32_t x : v) b.u32(static_cast<uint32_t>(x));
  return {key, b.b};
}

struct Meta {
  std::vector<Kv> kvs;
  Meta& set(Kv kv) {
    for (auto& e : kvs)
      if (e.key == kv.key) {
        e = std::move(kv);
        return *this;
      }
    kvs.push_back(std::move(kv));
    return *this;
  }
  Meta& erase(const std::string& key) {
    for (size_t i = 0; i < kvs.size(); ++i)
      if (kvs[i].key == key) kvs.erase(kvs.begin() + static_cast<long>(i));
    return *this;
  }
  std::vector<uint8_t> bytes() const {
    Bytes out;
    out.b = {'G', 'G', 'U', 'F'};
    out.u32(3).u64(0).u64(kvs.size());
    for (const Kv& kv : kvs) {
      out.str(kv.key);
      out.b.insert(out.b.end(), kv.value.begin(), kv.value.end());
    }
    while (out.b.size() % 32) out.b.push_back(0);
    return out.b;
  }
};

// The parsed file keeps pointers into the bytes: keep both together.
struct Parsed {
  std::vector<uint8_t> bytes;
  GgufFile file;
};
Parsed parse(const Meta& m, const std::string& name) {
  std::vector<uint8_t> b = m.bytes();
  GgufFile f = GgufFile::parse(b.data(), b.size(), name);
  return {std::move(b), std::move(f)};
}
std::unique_ptr<Tokenizer> load(const Meta& m, const std::string& name = "tiny.gguf") {
  auto p = parse(m, name);
  return moe::tokenizerFromGguf(p.file);
}
std::string errorOf(const Meta& m, const std::string& name = "bad.gguf") {
  try {
    auto p = parse(m, name);
    moe::tokenizerFromGguf(p.file);
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_CONTAINS(haystack, needle)                           \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected \"" << (needle) << "\" in: \"" << (haystack) << "\""

// ---- a byte-level ("gpt2") vocabulary ----------------------------------------------------------
// Ġ is the byte character of ' ', Ċ that of '\n'.
const std::vector<std::string> kBpeTokens = {
    "<|end|>", "<s>", "a", "b", "c", "\xC4\xA0" /*Ġ*/, "1", "2", "ab", "abc", "\xC4\xA0" "a", "12",
    "\xC4\x8A" /*Ċ*/, "\xC4\x8A\xC4\x8A", "z"};
enum BpeId : int32_t { kEnd, kBosB, kA, kB, kC, kSp, k1, k2, kAb, kAbc, kSpA, k12, kNl, kNlNl, kZ };
// "z" is a token that no merge reaches; "Ġ a" ranks below "a b".
const std::vector<std::string> kBpeMerges = {"a b", "ab c", "\xC4\xA0 a", "1 2", "\xC4\x8A \xC4\x8A"};

Meta bpeMeta(const std::string& pre) {
  Meta m;
  m.set(kvString("general.architecture", "llama"));
  m.set(kvString("tokenizer.ggml.model", "gpt2"));
  if (!pre.empty()) m.set(kvString("tokenizer.ggml.pre", pre));
  m.set(kvStrings("tokenizer.ggml.tokens", kBpeTokens));
  std::vector<int32_t> types(kBpeTokens.size(), 1);
  types[kEnd] = 3;
  types[kBosB] = 3;
  m.set(kvI32s("tokenizer.ggml.token_type", types));
  m.set(kvStrings("tokenizer.ggml.merges", kBpeMerges));
  m.set(kvU32("tokenizer.ggml.bos_token_id", kBosB));
  m.set(kvU32("tokenizer.ggml.eos_token_id", kEnd));
  return m;
}

TEST(GgufTokenizer, ByteLevelMergesByRank) {
  auto t = load(bpeMeta("gpt-2"));
  EXPECT_EQ(t->encode("abc", false), (Ids{kAbc}));
  // " ab" is one pre-token Ġ a b; "a b" (rank 0) merges before "Ġ a" (rank 2), then nothing joins Ġ ab.
  EXPECT_EQ(t->encode(" ab", false), (Ids{kSp, kAb}));
  EXPECT_EQ(t->encode(" a", false), (Ids{kSpA}));
  EXPECT_EQ(t->encode("abz", false), (Ids{kAb, kZ}));
  EXPECT_EQ(t->decode(t->encode(" ab abc", false)), " ab abc");
  EXPECT_EQ(t->vocabSize(), static_cast<int32_t>(kBpeTokens.size()));
  EXPECT_EQ(t->name(), "tiny.gguf");
}

TEST(GgufTokenizer, ControlTokensAreSpecialInText) {
  auto t = load(bpeMeta("gpt-2"));
  EXPECT_EQ(t->encode("<|end|>abc<|end|>", false), (Ids{kEnd, kAbc, kEnd}));
  EXPECT_TRUE(t->isSpecial(kEnd));
  EXPECT_FALSE(t->isSpecial(kAbc));
  EXPECT_EQ(t->decode({kEnd, kAbc}, true), "abc");
}

TEST(GgufTokenizer, PreTokenizerFollowsTokenizerGgmlPre) {
  // gpt-2: " ?\p{N}+" keeps "12" whole, so "1 2" merges. smollm first splits off every digit.
  EXPECT_EQ(load(bpeMeta("gpt-2"))->encode("12", false), (Ids{k12}));
  EXPECT_EQ(load(bpeMeta("smollm"))->encode("12", false), (Ids{k1, k2}));
  // default (llama.cpp's list for unknown BPE files): \p{N}+ keeps "12" whole as well.
  EXPECT_EQ(load(bpeMeta("default"))->encode("12", false), (Ids{k12}));
  // "\n\n1": GPT-2's regex alone leaves "\n" "\n" "1" (\s+(?!\S) cannot take the newline before
  // the digit); with the digit split off first, "\n\n" is a piece of its own and merges.
  EXPECT_EQ(load(bpeMeta("gpt-2"))->encode("\n\n1", false), (Ids{kNl, kNl, k1}));
  EXPECT_EQ(load(bpeMeta("smollm"))->encode("\n\n1", false), (Ids{kNlNl, k1}));
  // A missing pre is llama.cpp's "default".
  EXPECT_EQ(load(bpeMeta(""))->encode("12", false), (Ids{k12}));
}

TEST(GgufTokenizer, Llama3PreIgnoresMergesAndAddsBosByDefault) {
  // Without the merge "ab c", merging stops at ab c; llama-bpe's ignore_merges finds the whole
  // pre-token "abc" in the vocabulary first.
  Meta m = bpeMeta("llama-bpe");
  m.set(kvStrings("tokenizer.ggml.merges", {"a b", "\xC4\xA0 a", "1 2"}));
  auto t = load(m);
  EXPECT_EQ(t->encode("abc", false), (Ids{kAbc}));
  EXPECT_EQ(load(bpeMeta("gpt-2").set(kvStrings("tokenizer.ggml.merges", {"a b", "\xC4\xA0 a", "1 2"})))
                ->encode("abc", false),
            (Ids{kAb, kC}));
  EXPECT_EQ(t->encode("abc", true), (Ids{kBosB, kAbc}));  // llama.cpp: llama-bpe adds BOS
  m.set(kvBool("tokenizer.ggml.add_bos_token", false));
  EXPECT_EQ(load(m)->encode("abc", true), (Ids{kAbc}));
}

TEST(GgufTokenizer, AddBosAndAddEosFlags) {
  Meta m = bpeMeta("gpt-2");
  EXPECT_EQ(load(m)->encode("abc", true), (Ids{kAbc}));  // gpt2 files add nothing by default
  m.set(kvBool("tokenizer.ggml.add_bos_token", true));
  EXPECT_EQ(load(m)->encode("abc", true), (Ids{kBosB, kAbc}));
  EXPECT_EQ(load(m)->encode("abc", false), (Ids{kAbc}));
  m.set(kvBool("tokenizer.ggml.add_eos_token", true));
  auto t = load(m);
  EXPECT_EQ(t->encode("abc", true), (Ids{kBosB, kAbc, kEnd}));
  EXPECT_EQ(t->bosId(), kBosB);
  EXPECT_EQ(t->eosId(), kEnd);
}

// ---- a SentencePiece ("llama") vocabulary -----------------------------------------------------
const std::string kMeta = "\xE2\x96\x81";  // ▁
const std::vector<std::string> kSpTokens = {"<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>", kMeta, "a", "b", "c",
                                            "ab", "bc", kMeta + "a", kMeta + "ab", "<br>", "  "};
enum SpId : int32_t { kUnk, kBos, kEos, kC3, kA9, kMs, kSa, kSb, kSc, kSab, kSbc, kMsA, kMsAb, kBr, kTwoSp };
// "bc" scores above "ab", so "abc" merges b+c first although a+b comes first in the text.
const std::vector<float> kSpScores = {0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -0.5f, -6, -7, 0, 0};

Meta spMeta() {
  Meta m;
  m.set(kvString("general.architecture", "llama"));
  m.set(kvString("tokenizer.ggml.model", "llama"));
  m.set(kvStrings("tokenizer.ggml.tokens", kSpTokens));
  m.set(kvF32s("tokenizer.ggml.scores", kSpScores));
  m.set(kvI32s("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4}));
  m.set(kvU32("tokenizer.ggml.bos_token_id", kBos));
  m.set(kvU32("tokenizer.ggml.eos_token_id", kEos));
  m.set(kvU32("tokenizer.ggml.unknown_token_id", kUnk));
  return m;
}

TEST(GgufTokenizer, SentencePieceMergesByScore) {
  Meta m = spMeta();
  m.set(kvBool("tokenizer.ggml.add_space_prefix", false));
  auto t = load(m);
  EXPECT_EQ(t->encode("abc", false), (Ids{kSa, kSbc}));  // bc (-0.5) before ab (-5); "abc" is no token
  EXPECT_EQ(t->encode("ab", false), (Ids{kSab}));
  EXPECT_EQ(t->encode("a b", false), (Ids{kSa, kMs, kSb}));  // "a▁" and "▁b" are no tokens
  EXPECT_EQ(t->encode("\xC3\xA9", false), (Ids{kC3, kA9}));   // é: byte fallback
  EXPECT_EQ(t->encode("x", false), (Ids{kUnk}));              // no <0x78>: the unknown token
  EXPECT_EQ(t->decode(t->encode("a b\xC3\xA9", false)), "a b\xC3\xA9");
}

TEST(GgufTokenizer, SentencePieceSpacePrefix) {
  auto t = load(spMeta());  // add_space_prefix absent: llama.cpp's default is true
  // ▁abc: bc first, then ▁a (-6); "▁abc" is no token.
  EXPECT_EQ(t->encode("abc", false), (Ids{kMsA, kSbc}));
  EXPECT_EQ(t->encode("ab", false), (Ids{kMsAb}));
  EXPECT_EQ(t->decode(t->encode("ab", false)), "ab");
  Meta m = spMeta();
  m.set(kvBool("tokenizer.ggml.add_space_prefix", false));
  EXPECT_EQ(load(m)->encode("ab", false), (Ids{kSab}));
  m.set(kvBool("tokenizer.ggml.add_space_prefix", true));
  EXPECT_EQ(load(m)->encode("ab", false), (Ids{kMsAb}));
}

TEST(GgufTokenizer, SentencePieceTokenTypesAndFlags) {
  Meta m = spMeta();
  m.set(kvBool("tokenizer.ggml.add_space_prefix", false));
  auto t = load(m);
  // User-defined tokens are matched in the raw text, also runs of real spaces.
  EXPECT_EQ(t->encode("a<br>b", false), (Ids{kSa, kBr, kSb}));
  EXPECT_EQ(t->encode("a  b", false), (Ids{kSa, kTwoSp, kSb}));
  EXPECT_FALSE(t->isSpecial(kBr));
  EXPECT_TRUE(t->isSpecial(kBos));
  EXPECT_EQ(t->encode("<s>ab</s>", false), (Ids{kBos, kSab, kEos}));
  // llama files add BOS unless add_bos_token says otherwise.
  EXPECT_EQ(t->encode("ab", true), (Ids{kBos, kSab}));
  m.set(kvBool("tokenizer.ggml.add_bos_token", false));
  EXPECT_EQ(load(m)->encode("ab", true), (Ids{kSab}));
  m.set(kvBool("tokenizer.ggml.add_eos_token", true));
  EXPECT_EQ(load(m)->encode("ab", true), (Ids{kSab, kEos}));
}

TEST(GgufTokenizer, SentencePieceDefaultIds) {
  // Without the id keys llama.cpp uses <unk> 0, <s> 1, </s> 2.
  Meta m = spMeta();
  m.erase("tokenizer.ggml.bos_token_id").erase("tokenizer.ggml.eos_token_id").erase("tokenizer.ggml.unknown_token_id");
  auto t = load(m);
  EXPECT_EQ(t->bosId(), kBos);
  EXPECT_EQ(t->eosId(), kEos);
  EXPECT_EQ(t->unkId(), kUnk);
  EXPECT_EQ(t->encode("ab", true), (Ids{kBos, kMsAb}));
}

// A temporary folder for files of one test, removed at the end.
struct TempDir {
  std::filesystem::path dir;
  explicit TempDir(const std::string& tag)
      : dir(std::filesystem::temp_directory_path() / ("moe_gguf_tok_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir);
  }
  ~TempDir() { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const Meta& m) const {
    const std::string path = (dir / name).string();
    const auto b = m.bytes();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return path;
  }
};

// Runs a shell command; its exit status and combined output.
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(GgufTokenizer, FromPath) {
  TempDir tmp("path");
  const std::string path = tmp.write("tiny.gguf", bpeMeta("gpt-2"));
  auto t = moe::tokenizerFromGguf(path);
  EXPECT_EQ(t->encode(" ab", false), (Ids{kSp, kAb}));
  EXPECT_EQ(t->name(), path);
}

TEST(GgufTokenizer, TokenizeCommand) {
  TempDir tmp("cli");
  const std::string bpe = tmp.write("bpe.gguf", bpeMeta("gpt-2").set(kvBool("tokenizer.ggml.add_bos_token", true)));
  auto [rc, out] = run(std::string(MOE_DIST_BIN) + " tokenize --model '" + bpe + "' --text ' ab<|end|>' --json");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "[{\"id\":1,\"piece\":\"<s>\"},{\"id\":5,\"piece\":\" \"},{\"id\":8,\"piece\":\"ab\"},"
                 "{\"id\":0,\"piece\":\"<|end|>\"}]\n");
  const std::string sp = tmp.write("sp.gguf", spMeta());
  std::tie(rc, out) = run(std::string(MOE_DIST_BIN) + " tokenize --model '" + sp + "' --text 'abc'");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "ids: 1 11 10\npieces: \"<s>\" \" a\" \"bc\"\n");
  const std::string bad = tmp.write("bad.gguf", bpeMeta("gpt-2").erase("tokenizer.ggml.tokens"));
  std::tie(rc, out) = run(std::string(MOE_DIST_BIN) + " tokenize --model '" + bad + "' --text x");
  EXPECT_NE(rc, 0) << out;
  EXPECT_CONTAINS(out, bad + ": tokenizer.ggml.tokens is missing");
  std::tie(rc, out) = run(std::string(MOE_DIST_BIN) + " tokenize --model '" + (tmp.dir / "absent.gguf").string() +
                          "' --text x");
  EXPECT_NE(rc, 0) << out;
  EXPECT_CONTAINS(out, "absent.gguf");
}

TEST(GgufTokenizer, KnownPreTokenizers) {
  for (const char* pre : {"default", "llama-bpe", "llama3", "qwen2", "smollm", "gpt-2"})
    EXPECT_TRUE(moe::ggufPreTokenizer(pre)) << pre;
  EXPECT_FALSE(moe::ggufPreTokenizer("tekken"));
  EXPECT_TRUE(moe::ggufPreTokenizer("llama-bpe")->ignoreMerges);
  EXPECT_FALSE(moe::ggufPreTokenizer("qwen2")->ignoreMerges);
  // Every regex compiles and the known values all build a tokenizer.
  for (const char* pre : {"default", "llama-bpe", "qwen2", "smollm", "gpt-2", "starcoder", "command-r"}) {
    SCOPED_TRACE(pre);
    Meta m = bpeMeta(pre);
    m.set(kvBool("tokenizer.ggml.add_bos_token", false));
    EXPECT_EQ(load(m)->encode("abc", false), (Ids{kAbc}));
  }
}

// ---- malformed metadata ------------------------------------------------------------------------
TEST(GgufTokenizerErrors, MissingTokens) {
  const std::string e = errorOf(bpeMeta("gpt-2").erase("tokenizer.ggml.tokens"));
  EXPECT_CONTAINS(e, "bad.gguf");
  EXPECT_CONTAINS(e, "tokenizer.ggml.tokens is missing");
}

TEST(GgufTokenizerErrors, MissingOrUnknownModel) {
  EXPECT_CONTAINS(errorOf(bpeMeta("gpt-2").erase("tokenizer.ggml.model")), "bad.gguf: tokenizer.ggml.model is missing");
  const std::string e = errorOf(bpeMeta("gpt-2").set(kvString("tokenizer.ggml.model", "bert")));
  EXPECT_CONTAINS(e, "bad.gguf: tokenizer.ggml.model = 'bert' is not supported");
  EXPECT_CONTAINS(e, "gpt2");
  EXPECT_CONTAINS(e, "llama");
}

TEST(GgufTokenizerErrors, UnknownPreTokenizer) {
  const std::string e = errorOf(bpeMeta("tekken"));
  EXPECT_CONTAINS(e, "bad.gguf: tokenizer.ggml.pre = 'tekken'");
  EXPECT_CONTAINS(e, "smollm");
}

TEST(GgufTokenizerErrors, ArrayLengthsDifferFromTokens) {
  Meta m = spMeta();
  m.set(kvF32s("tokenizer.ggml.scores", {0, 0, 0}));
  std::string e = errorOf(m);
  EXPECT_CONTAINS(e, "bad.gguf: tokenizer.ggml.scores has 3 entries, but tokenizer.ggml.tokens has 15");
  m = spMeta();
  m.set(kvI32s("tokenizer.ggml.token_type", {1, 1}));
  e = errorOf(m);
  EXPECT_CONTAINS(e, "bad.gguf: tokenizer.ggml.token_type has 2 entries, but tokenizer.ggml.tokens has 15");
  m = bpeMeta("gpt-2");
  m.set(kvI32s("tokenizer.ggml.token_type", std::vector<int32_t>(kBpeTokens.size() + 1, 1)));
  EXPECT_CONTAINS(errorOf(m), "tokenizer.ggml.token_type has 16 entries, but tokenizer.ggml.tokens has 15");
  EXPECT_CONTAINS(errorOf(spMeta().erase("tokenizer.ggml.scores")), "bad.gguf: tokenizer.ggml.scores is missing");
}

TEST(GgufTokenizerErrors, BadTokenTypeValue) {
  Meta m = spMeta();
  m.set(kvI32s("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 1, 1, 1, 1, 9, 1, 1, 1, 4, 4}));
  EXPECT_CONTAINS(errorOf(m), "bad.gguf: tokenizer.ggml.token_type[9] = 9 is not a token type");
}

TEST(GgufTokenizerErrors, MergeWithUnknownToken) {
  Meta m = bpeMeta("gpt-2");
  m.set(kvStrings("tokenizer.ggml.merges", {"a b", "a q"}));
  std::string e = errorOf(m);
  EXPECT_CONTAINS(e, "bad.gguf: tokenizer.ggml.merges[1] = 'a q' names 'q', which is not in tokenizer.ggml.tokens");
  m.set(kvStrings("tokenizer.ggml.merges", {"b c"}));  // both parts exist, "bc" does not
  EXPECT_CONTAINS(errorOf(m), "bad.gguf: tokenizer.ggml.merges[0] = 'b c' makes 'bc'");
  m.set(kvStrings("tokenizer.ggml.merges", {"ab"}));
  EXPECT_CONTAINS(errorOf(m), "bad.gguf: tokenizer.ggml.merges[0] = 'ab' is not \"left right\"");
  EXPECT_CONTAINS(errorOf(bpeMeta("gpt-2").erase("tokenizer.ggml.merges")), "bad.gguf: tokenizer.ggml.merges is missing");
}

TEST(GgufTokenizerErrors, WrongValueTypes) {
  Meta m = bpeMeta("gpt-2");
  m.set(kvI32s("tokenizer.ggml.tokens", {1, 2, 3}));
  std::string e = errorOf(m);
  EXPECT_CONTAINS(e, "bad.gguf");
  EXPECT_CONTAINS(e, "tokenizer.ggml.tokens");
  EXPECT_CONTAINS(e, "expected array of string");
  m = spMeta();
  m.set(kvI32s("tokenizer.ggml.scores", std::vector<int32_t>(kSpTokens.size(), 0)));
  e = errorOf(m);
  EXPECT_CONTAINS(e, "tokenizer.ggml.scores");
  EXPECT_CONTAINS(e, "expected array of float32");
}

TEST(GgufTokenizerErrors, IdsOutsideTheVocabulary) {
  Meta m = spMeta();
  m.set(kvU32("tokenizer.ggml.bos_token_id", 99));
  EXPECT_CONTAINS(errorOf(m), "bad.gguf: tokenizer.ggml.bos_token_id = 99 is outside the vocabulary of 15 tokens");
  m = bpeMeta("gpt-2");
  m.erase("tokenizer.ggml.bos_token_id").set(kvBool("tokenizer.ggml.add_bos_token", true));
  EXPECT_CONTAINS(errorOf(m), "bad.gguf: tokenizer.ggml.add_bos_token is set (or implied) but tokenizer.ggml.bos_token_id is missing");
}

}  // namespace
