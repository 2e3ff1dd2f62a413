// Unit tests of the tokenizer: errors on bad tokenizer.json input, TokenizerSpec (the GGUF path)
// against tokenizer.json, BOS/EOS from tokenizer_config.json, pieces, long inputs and threads.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "worker/tokenizer.h"
#include "worker/tokenizer_unicode.h"

namespace {

using nlohmann::json;
using moe::Tokenizer;
using moe::TokenizerSpec;
using moe::TokenType;
using Ids = std::vector<int32_t>;

const std::string kFixtures = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/tokenizers/";

json readJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return json::parse(in);
}

// The error message of building a tokenizer from `text`, or "" if it builds.
std::string errorOf(const std::string& text, const std::string& config = "") {
  try {
    if (config.empty()) Tokenizer::fromJsonString(text, "dir/tokenizer.json");
    else Tokenizer::fromJsonString(text, "dir/tokenizer.json", std::string_view(config));
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "";
}

// A minimal valid byte-level tokenizer.json with the given model fields and components merged in.
std::string tiny(const json& patch = json::object()) {
  json t = json::parse(R"({"version": "1.0", "model": {"type": "BPE",
      "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "<unk>": 5}, "merges": ["a b", "ab c"]}})");
  t.merge_patch(patch);
  return t.dump();
}

std::vector<std::string> goldenTexts(const std::string& folder) {
  std::vector<std::string> texts;
  const json goldens = readJson(kFixtures + "goldens.json");
  for (const auto& t : goldens["tokenizers"])
    if (t["folder"] == "tokenizers/" + folder)
      for (const auto& c : t["cases"])
        if (c.contains("text")) texts.push_back(c["text"]);
  EXPECT_GT(texts.size(), 100u);
  return texts;
}

// ---- errors ----------------------------------------------------------------------------------
TEST(TokenizerErrors, MalformedJsonNamesFileAndPosition) {
  const std::string msg = errorOf("{\n  \"model\": {\"vocab\": ,}\n}");
  EXPECT_NE(msg.find("dir/tokenizer.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed JSON at byte"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MissingPartsNameTheField) {
  EXPECT_NE(errorOf("{}").find("dir/tokenizer.json: model: missing"), std::string::npos) << errorOf("{}");
  EXPECT_NE(errorOf(R"({"model": {"type": "BPE", "merges": []}})").find("model.vocab: missing"), std::string::npos);
  EXPECT_NE(errorOf(R"({"model": {"type": "BPE", "vocab": {}}})").find("model.merges: missing"), std::string::npos);
  EXPECT_NE(errorOf("[1, 2]").find("expected an object"), std::string::npos);
}

TEST(TokenizerErrors, MergeWithUnknownToken) {
  std::string msg = errorOf(tiny(json::parse(R"({"model": {"merges": ["a b", "ab x"]}})")));
  EXPECT_NE(msg.find("model.merges: merge 1 ('ab' 'x') names 'x', which is not in the vocabulary"), std::string::npos)
      << msg;
  msg = errorOf(tiny(json::parse(R"({"model": {"merges": ["b c"]}})")));
  EXPECT_NE(msg.find("makes 'bc', which is not in the vocabulary"), std::string::npos) << msg;
  msg = errorOf(tiny(json::parse(R"({"model": {"merges": ["a b c"]}})")));
  EXPECT_NE(msg.find("model.merges[0]: expected \"left right\""), std::string::npos) << msg;
}

TEST(TokenizerErrors, WrongTypesNameTheField) {
  std::string msg = errorOf(tiny(json::parse(R"({"model": {"vocab": {"a": "zero"}}})")));
  EXPECT_NE(msg.find("model.vocab['a']: expected an integer"), std::string::npos) << msg;
  msg = errorOf(tiny(json::parse(R"({"model": {"vocab": {"a": -3}}})")));
  EXPECT_NE(msg.find("model.vocab['a']: expected an integer in [0,"), std::string::npos) << msg;
  msg = errorOf(tiny(json::parse(R"({"model": {"byte_fallback": "yes"}})")));
  EXPECT_NE(msg.find("model.byte_fallback: expected true or false"), std::string::npos) << msg;
  msg = errorOf(tiny(json::parse(R"({"model": {"dropout": 0.1}})")));
  EXPECT_NE(msg.find("model.dropout: must be null"), std::string::npos) << msg;
  msg = errorOf(tiny(json::parse(R"({"version": "2.0"})")));
  EXPECT_NE(msg.find("version: unknown tokenizer.json version '2.0'"), std::string::npos) << msg;
}

TEST(TokenizerErrors, UnsupportedComponentsNameTypeAndField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"normalizer": {"type": "NFKC"}})", "normalizer: normalizer type 'NFKC' is not supported"},
      {R"({"normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}, {"type": "BertNormalizer"}]}})",
       "normalizer.normalizers[1]: normalizer type 'BertNormalizer' is not supported"},
      {R"({"pre_tokenizer": {"type": "BertPreTokenizer"}})", "pre_tokenizer: pre-tokenizer type 'BertPreTokenizer'"},
      {R"({"decoder": {"type": "WordPiece"}})", "decoder: decoder type 'WordPiece' is not supported"},
      {R"({"post_processor": {"type": "BertProcessing"}})", "post_processor: post-processor type 'BertProcessing'"},
      {R"({"model": {"type": "WordPiece"}})", "model.type: model type 'WordPiece' is not supported"},
      {R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways", "invert": false}})",
       "pre_tokenizer.behavior: expected Removed, Isolated"},
      {R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated", "invert": false}})",
       "pre_tokenizer.pattern.Regex: invalid regex '(a'"},
      {R"({"pre_tokenizer": {"type": "Metaspace", "replacement": "ab"}})",
       "pre_tokenizer.replacement: expected exactly one character"},
      {R"({"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}],
           "special_tokens": {}}})",
       "post_processor.single[0].SpecialToken.id: '<s>' is not in special_tokens"},
      {R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits"}, {"kind": "x"}]}})",
       "pre_tokenizer.pretokenizers[1].type: missing"},
  };
  for (const auto& [patchText, want] : cases) {
    const json patch = json::parse(patchText);
    const std::string msg = errorOf(tiny(patch));
    EXPECT_NE(msg.find("dir/tokenizer.json: " + want), std::string::npos) << "want: " << want << "\ngot:  " << msg;
  }
}

TEST(TokenizerErrors, EndlesslyGrowingPipelineIsAnError) {
  // Each ByteLevel doubles the bytes of non-ASCII text: 40 of them would need 2^40 times the memory.
  json many = json::parse(R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": []}})");
  for (int i = 0; i < 30; ++i)
    many["pre_tokenizer"]["pretokenizers"].push_back(json::parse(R"({"type": "ByteLevel", "add_prefix_space": false})"));
  many["pre_tokenizer"]["pretokenizers"].push_back(json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "ByteLevel"}, {"type": "ByteLevel"}, {"type": "ByteLevel"}, {"type": "ByteLevel"}]})"));
  const auto t = Tokenizer::fromJsonString(tiny(many), "grow/tokenizer.json");
  try {
    t->encode("\xC3\xA9\xC3\xA9");
    ADD_FAILURE() << "no error";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("grow/tokenizer.json: encoding failed: pre-tokenizer: the text grew"),
              std::string::npos) << e.what();
  }
  const auto r = Tokenizer::fromJsonString(
      tiny(json::parse(R"({"normalizer": {"type": "Sequence", "normalizers": [
          {"type": "Replace", "pattern": {"Regex": ""}, "content": "abcabcabcabcabcabcabcabcabcabc"},
          {"type": "Replace", "pattern": {"Regex": ""}, "content": "abcabcabcabcabcabcabcabcabcabc"},
          {"type": "Replace", "pattern": {"Regex": ""}, "content": "abcabcabcabcabcabcabcabcabcabc"},
          {"type": "Replace", "pattern": {"Regex": ""}, "content": "abcabcabcabcabcabcabcabcabcabc"},
          {"type": "Replace", "pattern": {"Regex": ""}, "content": "abcabcabcabcabcabcabcabcabcabc"},
          {"type": "Replace", "pattern": {"Regex": ""}, "content": "abcabcabcabcabcabcabcabcabcabc"}]}})")),
      "grow/tokenizer.json");
  EXPECT_THROW(r->encode("abcdefgh"), moe::Error);
}

TEST(TokenizerErrors, FilesAndConfig) {
  try {
    Tokenizer::fromFile("/nonexistent/tokenizer.json");
    ADD_FAILURE() << "no error";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json: cannot open"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::fromModelFolder(MOE_SOURCE_DIR);
    ADD_FAILURE() << "no error";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no tokenizer.json"), std::string::npos) << e.what();
  }
  const std::string msg = errorOf(tiny(), "{\"bos_token\": ");
  EXPECT_NE(msg.find("dir/tokenizer_config.json: malformed JSON"), std::string::npos) << msg;
  EXPECT_NE(errorOf(tiny(), R"({"add_bos_token": true})").find("add_bos_token is true but there is no bos_token"),
            std::string::npos);
}

// ---- model options on a hand-made vocabulary ---------------------------------------------------
TEST(TokenizerBpe, MergesRanksAndPairFormat) {
  const auto t = Tokenizer::fromJsonString(tiny(), "t.json");
  EXPECT_EQ(t->encode("abc"), Ids({4}));
  EXPECT_EQ(t->encode("abcab"), Ids({4, 3}));
  EXPECT_EQ(t->encode("cab"), Ids({2, 3}));
  EXPECT_EQ(t->encode("xa"), Ids({0}));  // no unk token: unknown characters are dropped, as in Python
  const auto pairs = Tokenizer::fromJsonString(tiny(json::parse(R"({"model": {"merges": [["a", "b"], ["ab", "c"]]}})")), "t.json");
  EXPECT_EQ(pairs->encode("abcab"), Ids({4, 3}));
  // Without the "ab c" merge, "abc" stays two tokens; with ignore_merges it is looked up whole.
  const auto noMerge = Tokenizer::fromJsonString(tiny(json::parse(R"({"model": {"merges": ["a b"]}})")), "t.json");
  EXPECT_EQ(noMerge->encode("abc"), Ids({3, 2}));
  const auto ignore =
      Tokenizer::fromJsonString(tiny(json::parse(R"({"model": {"merges": ["a b"], "ignore_merges": true}})")), "t.json");
  EXPECT_EQ(ignore->encode("abc"), Ids({4}));
}

TEST(TokenizerBpe, UnknownTokenFusing) {
  const auto unk = Tokenizer::fromJsonString(tiny(json::parse(R"({"model": {"unk_token": "<unk>"}})")), "t.json");
  EXPECT_EQ(unk->encode("xyab"), Ids({5, 5, 3}));
  EXPECT_EQ(unk->unkId(), 5);
  const auto fused = Tokenizer::fromJsonString(tiny(json::parse(R"({"model": {"unk_token": "<unk>", "fuse_unk": true}})")), "t.json");
  EXPECT_EQ(fused->encode("xyab"), Ids({5, 3}));
  const auto missing = Tokenizer::fromJsonString(tiny(json::parse(R"({"model": {"unk_token": "<nope>"}})")), "t.json");
  EXPECT_THROW(missing->encode("x"), moe::Error);
  EXPECT_EQ(missing->encode("ab"), Ids({3}));
}

// ---- TokenizerSpec (GGUF) against tokenizer.json ----------------------------------------------
TokenizerSpec specFromJson(const std::string& folder, moe::TokenizerKind kind) {
  const json j = readJson(kFixtures + folder + "/tokenizer.json");
  TokenizerSpec spec;
  spec.kind = kind;
  spec.name = folder + " spec";
  int32_t maxId = 0;
  for (const auto& [tok, id] : j["model"]["vocab"].items()) maxId = std::max(maxId, id.get<int32_t>());
  for (const auto& a : j["added_tokens"]) maxId = std::max(maxId, a["id"].get<int32_t>());
  spec.tokens.resize(maxId + 1);
  spec.types.assign(maxId + 1, TokenType::Normal);
  for (const auto& [tok, id] : j["model"]["vocab"].items()) spec.tokens[id.get<int32_t>()] = tok;
  for (const auto& a : j["added_tokens"]) {
    spec.tokens[a["id"].get<int32_t>()] = a["content"];
    spec.types[a["id"].get<int32_t>()] = a["special"].get<bool>() ? TokenType::Control : TokenType::UserDefined;
  }
  for (const auto& m : j["model"]["merges"]) {
    if (m.is_string()) {
      const std::string s = m;
      spec.merges.emplace_back(s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1));
    } else {
      spec.merges.emplace_back(m[0], m[1]);
    }
  }
  return spec;
}

TEST(TokenizerSpec, ByteLevelGpt2EqualsTokenizerJson) {
  TokenizerSpec spec = specFromJson("gpt2", moe::TokenizerKind::ByteLevelBpe);
  spec.eosId = 50256;
  const auto fromSpec = Tokenizer::fromSpec(spec);
  const auto fromJson = Tokenizer::fromModelFolder(kFixtures + "gpt2");
  EXPECT_EQ(fromSpec->vocabSize(), 50257);
  for (const auto& text : goldenTexts("gpt2")) {
    EXPECT_EQ(fromSpec->encode(text), fromJson->encode(text)) << text;
    EXPECT_EQ(fromSpec->decode(fromJson->encode(text)), fromJson->decode(fromJson->encode(text))) << text;
  }
}

TEST(TokenizerSpec, ByteLevelLlama3RegexIgnoreMergesAndBos) {
  TokenizerSpec spec = specFromJson("llama3", moe::TokenizerKind::ByteLevelBpe);
  spec.preTokenizerRegexes = {
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
      "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  spec.ignoreMerges = true;
  spec.addBos = true;
  spec.bosId = 0;
  spec.eosId = 4;
  const auto fromSpec = Tokenizer::fromSpec(spec);
  const auto fromJson = Tokenizer::fromModelFolder(kFixtures + "llama3");
  int compared = 0;
  for (const auto& text : goldenTexts("llama3")) {
    // Added tokens with lstrip / rstrip / single_word have no GGUF equivalent.
    if (text.find("<mask>") != std::string::npos || text.find("[[ref]]") != std::string::npos ||
        text.find("moe") != std::string::npos)
      continue;
    ++compared;
    EXPECT_EQ(fromSpec->encode(text), fromJson->encode(text)) << text;
    EXPECT_EQ(fromSpec->encode(text, false), fromJson->encode(text, false)) << text;
  }
  EXPECT_GT(compared, 100);
  EXPECT_EQ(fromSpec->bosId(), 0);
  EXPECT_EQ(fromSpec->eosId(), 4);
  EXPECT_TRUE(fromSpec->isSpecial(0));
}

TEST(TokenizerSpec, SentencePieceByScoreEqualsLlama2Merges) {
  // Scores as a sentencepiece model has them: the earlier the merge that makes a token, the
  // higher its score (tokens no merge makes score lowest). Merging by score must then give the
  // ids of merging by the merge list of tokenizer.json.
  TokenizerSpec spec = specFromJson("llama2", moe::TokenizerKind::SentencePieceBpe);
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < spec.tokens.size(); ++i) ids[spec.tokens[i]] = static_cast<int32_t>(i);
  spec.scores.assign(spec.tokens.size(), -1e9f);
  for (size_t rank = spec.merges.size(); rank-- > 0;)
    spec.scores[ids.at(spec.merges[rank].first + spec.merges[rank].second)] = -static_cast<float>(rank);
  spec.merges.clear();
  for (size_t i = 0; i < spec.tokens.size(); ++i)
    if (spec.tokens[i].size() == 6 && spec.tokens[i].compare(0, 3, "<0x") == 0) spec.types[i] = TokenType::Byte;
  spec.types[0] = TokenType::Unknown;
  spec.addBos = true;
  spec.bosId = 1;
  spec.eosId = 2;
  spec.unkId = 0;
  const auto fromSpec = Tokenizer::fromSpec(spec);
  const auto fromJson = Tokenizer::fromModelFolder(kFixtures + "llama2");
  for (const auto& text : goldenTexts("llama2")) {
    // tokenizer.json's <s> etc. are normalized added tokens (matched as "▁<s>"); GGUF control
    // tokens are matched in the raw text, as llama.cpp does.
    if (text.find("<s>") != std::string::npos || text.find("</s>") != std::string::npos ||
        text.find("<unk>") != std::string::npos)
      continue;
    EXPECT_EQ(fromSpec->encode(text), fromJson->encode(text)) << text;
    EXPECT_EQ(fromSpec->decode(fromJson->encode(text)), fromJson->decode(fromJson->encode(text))) << text;
  }
}

TEST(TokenizerSpec, HandBuiltSentencePiece) {
  TokenizerSpec spec;
  spec.kind = moe::TokenizerKind::SentencePieceBpe;
  spec.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "c", "ab", "bc", "\xE2\x96\x81" "a", "<0xC3>", "<0xA9>"};
  spec.scores = {0, 0, 0, -5, -5, -5, -5, -1, -0.5f, -2, 0, 0};
  spec.types = {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal, TokenType::Normal,
                TokenType::Normal, TokenType::Normal, TokenType::Normal, TokenType::Normal, TokenType::Normal,
                TokenType::Byte, TokenType::Byte};
  spec.addSpacePrefix = false;
  spec.bosId = 1;
  spec.eosId = 2;
  spec.unkId = 0;
  spec.addBos = true;
  auto t = Tokenizer::fromSpec(spec);
  EXPECT_EQ(t->encode("abc", false), Ids({4, 8}));  // "bc" scores higher than "ab"
  spec.scores[7] = -0.1f;
  t = Tokenizer::fromSpec(spec);
  EXPECT_EQ(t->encode("abc", false), Ids({7, 6}));
  EXPECT_EQ(t->encode("\xC3\xA9", false), Ids({10, 11}));  // é: byte tokens
  EXPECT_EQ(t->encode("\xC3\xBC", false), Ids({10, 0}));   // ü: no <0xBC>, so unk
  EXPECT_EQ(t->encode("a<s>b"), Ids({1, 4, 1, 5}));         // BOS, then <s> found in the text
  spec.addSpacePrefix = true;
  t = Tokenizer::fromSpec(spec);
  EXPECT_EQ(t->encode("a b", false), Ids({9, 3, 5}));
  EXPECT_EQ(t->decode({1, 9, 3, 5}, true), "a b");
  EXPECT_EQ(t->decode({1, 9, 3, 5}, false), "<s> a b");
  spec.scores.pop_back();
  EXPECT_THROW(Tokenizer::fromSpec(spec), moe::Error);
  spec.scores.push_back(0);
  spec.bosId = 99;
  EXPECT_THROW(Tokenizer::fromSpec(spec), moe::Error);
}

// ---- BOS / EOS, config ------------------------------------------------------------------------
TEST(TokenizerConfig, BosEosIds) {
  const auto llama2 = Tokenizer::fromModelFolder(kFixtures + "llama2");
  EXPECT_EQ(llama2->bosId(), 1);
  EXPECT_EQ(llama2->eosId(), 2);
  EXPECT_EQ(llama2->specialPrefix(), Ids({1}));
  EXPECT_EQ(llama2->encode("Hello world"), Ids({1, 15043, 3186}));
  const auto gpt2 = Tokenizer::fromModelFolder(kFixtures + "gpt2");
  EXPECT_EQ(gpt2->bosId(), 50256);
  EXPECT_EQ(gpt2->eosId(), 50256);
  EXPECT_TRUE(gpt2->specialPrefix().empty());
  const auto llama3 = Tokenizer::fromModelFolder(kFixtures + "llama3");
  EXPECT_EQ(llama3->bosId(), 0);
  EXPECT_EQ(llama3->eosId(), 4);
  const auto qwen2 = Tokenizer::fromModelFolder(kFixtures + "qwen2");
  EXPECT_FALSE(qwen2->bosId());
  EXPECT_EQ(qwen2->eosId(), 0);
  const auto smollm = Tokenizer::fromModelFolder(kFixtures + "smollm");
  EXPECT_EQ(smollm->bosId(), 1);
  EXPECT_EQ(smollm->eosId(), 2);
}

TEST(TokenizerConfig, AddBosTokenWithoutTemplate) {
  const json added = json::parse(R"({"added_tokens": [{"id": 5, "content": "<unk>", "special": true}]})");
  const std::string text = tiny(added);
  auto t = Tokenizer::fromJsonString(text, "d/tokenizer.json", std::string_view(R"({"bos_token": "<unk>", "add_bos_token": true,
      "eos_token": {"content": "abc"}, "add_eos_token": true})"));
  EXPECT_EQ(t->encode("ab"), Ids({5, 3, 4}));
  EXPECT_EQ(t->encode("ab", false), Ids({3}));
  // A template decides over the config.
  json templ = added;
  templ["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<unk>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<unk>": {"id": "<unk>", "ids": [5], "tokens": ["<unk>"]}}})");
  t = Tokenizer::fromJsonString(tiny(templ), "d/tokenizer.json", std::string_view(R"({"add_bos_token": false})"));
  EXPECT_EQ(t->encode("ab"), Ids({5, 3}));
  EXPECT_EQ(t->bosId(), 5);
}

// ---- pieces, ids, special tokens ---------------------------------------------------------------
TEST(TokenizerPieces, ReadableText) {
  const auto gpt2 = Tokenizer::fromModelFolder(kFixtures + "gpt2");
  EXPECT_EQ(gpt2->idToToken(995), "\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(gpt2->pieceText(995), " world");
  const Ids cjk = gpt2->encode(" \xE4\xB8\xAD", false);  // " 中": "Ġ" + one token for the 3 bytes
  ASSERT_EQ(cjk.size(), 2u);
  EXPECT_EQ(gpt2->pieceText(cjk[1]), "\xE4\xB8\xAD");
  EXPECT_EQ(gpt2->pieceText(*gpt2->tokenToId("\xC3\x83")), "<0xC3>");  // byte character "Ã" = 0xC3 alone
  EXPECT_EQ(gpt2->pieceText(50256), "<|endoftext|>");
  EXPECT_TRUE(gpt2->isSpecial(50256));
  EXPECT_FALSE(gpt2->isSpecial(995));
  const auto llama2 = Tokenizer::fromModelFolder(kFixtures + "llama2");
  EXPECT_EQ(llama2->pieceText(15043), " Hello");
  EXPECT_EQ(llama2->pieceText(13), "\n");       // <0x0A>
  EXPECT_EQ(llama2->pieceText(231), "<0xE4>");  // a lone lead byte
  EXPECT_EQ(llama2->tokenToId("\xE2\x96\x81Hello"), 15043);
  EXPECT_FALSE(llama2->tokenToId("no such piece"));
  EXPECT_THROW(llama2->idToToken(32000), moe::Error);
  EXPECT_THROW(llama2->idToToken(-1), moe::Error);
}

TEST(TokenizerUnicode, NfcNfdMatchPythonUnicodedata) {
  const json g = readJson(kFixtures + "unicode_goldens.json");
  EXPECT_EQ(g["unicode_version"].get<std::string>(), moe::tok::kUnicodeTablesVersion);
  int failures = 0, n = 0;
  for (const auto& row : g["nfc_nfd"]) {
    ++n;
    const std::string in = row[0], nfc = row[1], nfd = row[2];
    if ((moe::tok::nfc(in) != nfc || moe::tok::nfd(in) != nfd) && ++failures <= 5)
      ADD_FAILURE() << "input " << json(in).dump() << ": nfc " << json(moe::tok::nfc(in)).dump() << " want "
                    << json(nfc).dump() << ", nfd " << json(moe::tok::nfd(in)).dump() << " want " << json(nfd).dump();
  }
  EXPECT_EQ(failures, 0) << failures << " of " << n;
  EXPECT_GT(n, 5000);
}

TEST(TokenizerUnicode, ReplacementAndLowercase) {
  using moe::tok::replaceInvalidUtf8;
  EXPECT_EQ(replaceInvalidUtf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(replaceInvalidUtf8("a\xE4\xB8z"), "a\xEF\xBF\xBDz");                 // truncated: one U+FFFD
  EXPECT_EQ(replaceInvalidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: three
  EXPECT_EQ(replaceInvalidUtf8("\xF0\x9F\x98"), "\xEF\xBF\xBD");
  EXPECT_EQ(replaceInvalidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(moe::tok::lowercase("ÀB\xC4\xB0\xCE\xA3"), "àbi\xCC\x87\xCF\x83");  // İ -> i + U+0307; Σ -> σ
}

TEST(TokenizerInput, InvalidUtf8IsReplaced) {
  const auto llama3 = Tokenizer::fromModelFolder(kFixtures + "llama3");
  EXPECT_EQ(llama3->encode("ab\xFF\xFE" "c"), llama3->encode("ab\xEF\xBF\xBD\xEF\xBF\xBD" "c"));
  EXPECT_EQ(llama3->encode("x\xE4\xB8"), llama3->encode("x\xEF\xBF\xBD"));  // one U+FFFD for a truncated char
}

TEST(TokenizerInput, LongWordsRoundTrip) {
  const auto gpt2 = Tokenizer::fromModelFolder(kFixtures + "gpt2");
  std::string word;
  for (int i = 0; i < 60000; ++i) word += static_cast<char>('a' + (i * 7 + i / 13) % 26);
  const Ids ids = gpt2->encode(word, false);
  EXPECT_LT(ids.size(), word.size());
  EXPECT_EQ(gpt2->decode(ids), word);
  const std::string spaces(100000, ' ');
  EXPECT_EQ(gpt2->decode(gpt2->encode(spaces + "x")), spaces + "x");
}

TEST(TokenizerInput, ConcurrentEncodesAgree) {
  const auto llama2 = Tokenizer::fromModelFolder(kFixtures + "llama2");
  const std::vector<std::string> texts = goldenTexts("llama2");
  std::vector<Ids> want;
  for (const auto& t : texts) want.push_back(llama2->encode(t));
  int mismatches[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k)
    threads.emplace_back([&, k] {
      for (int round = 0; round < 5; ++round)
        for (size_t i = 0; i < texts.size(); ++i)
          if (llama2->encode(texts[(i + k * 7) % texts.size()]) != want[(i + k * 7) % texts.size()]) ++mismatches[k];
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches[0] + mismatches[1], 0);
}

}  // namespace
