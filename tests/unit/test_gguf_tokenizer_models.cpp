// The tokenizers of the two real GGUF models (scripts/get-models.sh) against golden ids from Python
// (tests/fixtures/gguf_tokenizers/goldens.json, made by tests/fixtures/make_gguf_tokenizer_goldens.py,
// which says what each reference is): real MMLU 5-shot prompts, rebuilt here from the MMLU data with
// moe's prompt builder, and a varied corpus. Every id is compared. Skips, saying why, when a model is
// not in the cache (${MOE_MODELS_DIR:-$HOME/.cache/moe-dist/models}) or MMLU is not at
// ${MOE_MMLU_DIR:-../shared/mmlu/data}.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"
#include "worker/gguf.h"
#include "worker/gguf_tokenizer.h"
#include "worker/tokenizer.h"

namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;
namespace fs = std::filesystem;

std::string modelsDir() {
  if (const char* d = std::getenv("MOE_MODELS_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/moe-dist/models";
}

std::string mmluDir() {
  const char* env = std::getenv("MOE_MMLU_DIR");
  return env && *env ? env : MOE_SOURCE_DIR "/../shared/mmlu/data";
}

const json& goldens() {
  static const json g = [] {
    std::ifstream in(MOE_SOURCE_DIR "/tests/fixtures/gguf_tokenizers/goldens.json");
    EXPECT_TRUE(in) << "cannot open the goldens";
    return json::parse(in);
  }();
  return g;
}

std::string fromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string show(const Ids& ids, size_t from) {
  std::ostringstream os;
  for (size_t i = from; i < ids.size() && i < from + 8; ++i) os << ids[i] << ' ';
  return os.str();
}

// Compares every id; on a mismatch says where the first difference is.
void expectIds(const Ids& got, const json& want, const std::string& what) {
  const Ids w = want.get<Ids>();
  size_t i = 0;
  while (i < got.size() && i < w.size() && got[i] == w[i]) ++i;
  EXPECT_TRUE(got == w) << what << ": first difference at id " << i << " of " << w.size() << " (got " << got.size()
                        << " ids): got [" << show(got, i) << "...], want [" << show(w, i) << "...]";
}

class GgufTokenizerModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    for (const json& m : goldens().at("models"))
      if (m.at("file") == GetParam()) entry_ = &m;
    ASSERT_NE(entry_, nullptr) << GetParam() << " has no goldens";
    path_ = modelsDir() + "/" + GetParam();
    if (!fs::exists(path_)) GTEST_SKIP() << path_ << " is not there: run scripts/get-models.sh to fetch it";
    tok_ = moe::tokenizerFromGguf(path_);
  }
  const json* entry_ = nullptr;
  std::string path_;
  std::unique_ptr<moe::Tokenizer> tok_;
};

TEST_P(GgufTokenizerModel, VocabularyAndSpecialTokens) {
  const json& e = *entry_;
  EXPECT_EQ(tok_->vocabSize(), e.at("tokens").get<int32_t>());
  EXPECT_EQ(tok_->bosId(), e.at("bos_id").get<int32_t>());
  EXPECT_EQ(tok_->eosId(), e.at("eos_id").get<int32_t>());
  const Ids wantPrefix = e.at("add_bos").get<bool>() ? Ids{e.at("bos_id").get<int32_t>()} : Ids{};
  const Ids wantSuffix = e.at("add_eos").get<bool>() ? Ids{e.at("eos_id").get<int32_t>()} : Ids{};
  EXPECT_EQ(tok_->specialPrefix(), wantPrefix);
  EXPECT_EQ(tok_->specialSuffix(), wantSuffix);
}

TEST_P(GgufTokenizerModel, Corpus) {
  size_t ids = 0;
  for (const json& c : entry_->at("corpus")) {
    const std::string text = c.contains("hex") ? fromHex(c.at("hex")) : c.at("text").get<std::string>();
    const std::string what = c.contains("hex") ? "hex " + c.at("hex").get<std::string>() : json(text).dump();
    expectIds(tok_->encode(text, false), c.at("ids"), what);
    Ids full = tok_->specialPrefix();
    for (int32_t id : c.at("ids")) full.push_back(id);
    full.insert(full.end(), tok_->specialSuffix().begin(), tok_->specialSuffix().end());
    EXPECT_EQ(tok_->encode(text, true), full) << what;
    ids += c.at("ids").size();
  }
  EXPECT_GT(ids, 1000u);
}

TEST_P(GgufTokenizerModel, MmluPrompts) {
  const std::string dir = mmluDir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no MMLU data at " << dir << " (set MOE_MMLU_DIR to run this test)";
  // Load each split once, with every subject the goldens name.
  std::map<std::string, moe::MmluDataset> splits;
  for (const json& p : entry_->at("prompts")) {
    const std::string split = p.at("split");
    if (!splits.count(split)) splits.emplace(split, moe::loadMmlu(dir, split, {}, 0, p.at("shots").get<int>()));
  }
  size_t prompts = 0, ids = 0;
  for (const json& p : entry_->at("prompts")) {
    const std::string subject = p.at("subject");
    const moe::SubjectData* s = splits.at(p.at("split")).findSubject(subject);
    ASSERT_NE(s, nullptr) << subject;
    const size_t index = p.at("index").get<size_t>();
    ASSERT_LT(index, s->eval.size()) << subject;
    const std::string text = moe::buildPrompt(*s, s->eval[index], p.at("shots").get<int>(), moe::PromptStyle::Original).text();
    // The same text as the generator's (else a difference would be the prompt's, not the tokenizer's).
    ASSERT_EQ(text.size(), p.at("bytes").get<size_t>()) << subject;
    ASSERT_EQ(fnv1a64(text), p.at("fnv1a64").get<std::string>()) << subject;
    expectIds(tok_->encode(text, false), p.at("ids"), subject + " #" + std::to_string(index));
    ++prompts;
    ids += p.at("ids").size();
  }
  EXPECT_EQ(prompts, 57u);
  RecordProperty("ids", static_cast<int>(ids));
}

// `moe-dist tokenize --model FILE.gguf --json` prints the ids encode(text, true) gives.
TEST_P(GgufTokenizerModel, TokenizeCommand) {
  const std::string text = "The following are multiple choice questions (with answers) about  anatomy.\n\nAnswer: 42";
  const std::string cmd = std::string(MOE_DIST_BIN) + " tokenize --model '" + path_ + "' --text '" + text + "' --json 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0) << out;
  Ids got;
  for (const json& e : json::parse(out)) got.push_back(e.at("id").get<int32_t>());
  EXPECT_EQ(got, tok_->encode(text, true)) << out;
  EXPECT_GT(got.size(), 10u);
}

INSTANTIATE_TEST_SUITE_P(Models, GgufTokenizerModel,
                         ::testing::Values("smollm2-135m-instruct.gguf", "gemma-3-270m.gguf"),
                         [](const auto& info) {
                           return info.param.rfind("smollm", 0) == 0 ? std::string("SmolLM2") : std::string("Gemma3");
                         });

}  // namespace
