// Golden tests: token ids of the C++ tokenizer against Hugging Face `tokenizers` (Python), for the
// real GPT-2 and Llama 2 files and the small trained ones (tests/fixtures/tokenizers/, made with
// tests/fixtures/make_tokenizer_goldens.py). Every id of every case is compared, with and without
// special tokens, and the decoded text with and without skipping special tokens.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "worker/tokenizer.h"

namespace {

using nlohmann::json;

const std::string kFixtures = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/";

const json& goldens() {
  static const json g = [] {
    std::ifstream in(kFixtures + "tokenizers/goldens.json");
    EXPECT_TRUE(in) << "cannot open goldens.json";
    return json::parse(in);
  }();
  return g;
}

std::string fromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string show(const std::vector<int32_t>& ids) {
  std::ostringstream os;
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? " " : "") << ids[i];
  return os.str();
}

class TokenizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGolden, IdsAndDecodingMatchPython) {
  const json* entry = nullptr;
  for (const auto& t : goldens()["tokenizers"])
    if (t["folder"] == "tokenizers/" + GetParam()) entry = &t;
  ASSERT_NE(entry, nullptr) << GetParam() << " is not in goldens.json";
  const auto tok = moe::Tokenizer::fromModelFolder(kFixtures + "tokenizers/" + GetParam());
  EXPECT_EQ(tok->vocabSize(), (*entry)["vocab_size"].get<int32_t>());
  int failures = 0, cases = 0;
  for (const auto& c : (*entry)["cases"]) {
    ++cases;
    const std::string text = c.contains("hex") ? fromHex(c["hex"]) : c["text"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto wantPlain = c.contains("ids_plain") ? c["ids_plain"].get<std::vector<int32_t>>() : want;
    const auto got = tok->encode(text, true);
    const auto gotPlain = tok->encode(text, false);
    const std::string decoded = c["decoded"];
    const std::string decodedSkip = c.contains("decoded_skip") ? c["decoded_skip"].get<std::string>() : decoded;
    const bool ok = got == want && gotPlain == wantPlain && tok->decode(want, false) == decoded &&
                    tok->decode(want, true) == decodedSkip;
    if (!ok && ++failures <= 5) {
      ADD_FAILURE() << GetParam() << ": text " << json(text).dump(-1, ' ', false, json::error_handler_t::replace)
                    << "\n  want ids  " << show(want) << "\n  got  ids  " << show(got)
                    << "\n  want plain " << show(wantPlain) << "\n  got  plain " << show(gotPlain)
                    << "\n  want decoded " << json(decoded).dump() << "\n  got  decoded "
                    << json(tok->decode(want, false)).dump(-1, ' ', false, json::error_handler_t::replace)
                    << "\n  want skip " << json(decodedSkip).dump() << "\n  got  skip "
                    << json(tok->decode(want, true)).dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  EXPECT_EQ(failures, 0) << failures << " of " << cases << " cases differ";
  EXPECT_GT(cases, 100);
}

const std::vector<std::string> kTokenizers = {
    "gpt2", "llama2", "llama3", "qwen2", "smollm", "metaspace", "classic",
    "variants/removed_nfd_lower", "variants/merged_previous_strip", "variants/merged_next_invert",
    "variants/contiguous_whitespace", "variants/whitespace_split_prefix"};

INSTANTIATE_TEST_SUITE_P(All, TokenizerGolden, ::testing::ValuesIn(kTokenizers), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n)
    if (c == '/') c = '_';
  return n;
});

TEST(TokenizerGoldenFile, EveryGoldenTokenizerIsTested) {
  EXPECT_EQ(goldens()["tokenizers"].size(), kTokenizers.size());
}

}  // namespace
