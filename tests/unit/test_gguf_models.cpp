// The two real models of the demo (fetched by scripts/get-models.sh into
// ${MOE_MODELS_DIR:-$HOME/.cache/moe-dist/models}): each opens, every tensor dequantizes to finite
// values, and the tokenizer metadata a tokenizer builder needs is present and consistent.
// Skips, saying why, when a model is not in the cache. Label `slow`.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "worker/dequantize.h"
#include "worker/gguf.h"

namespace {

std::string modelsDir() {
  if (const char* d = std::getenv("MOE_MODELS_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/moe-dist/models";
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

struct Expect {
  const char* file;
  const char* architecture;
  const char* tokenizerModel;
  const char* tokenizerPre;
};

void checkModel(const Expect& want) {
  const std::string path = modelsDir() + "/" + want.file;
  if (!exists(path)) GTEST_SKIP() << path << " is not there: run scripts/get-models.sh to fetch it";
  const moe::GgufWeights w(path);
  const moe::GgufFile& f = w.gguf();
  EXPECT_EQ(f.getString("general.architecture"), want.architecture);

  // Every tensor dequantizes, and to finite values.
  std::map<std::string, int> types;
  std::vector<float> buf;
  int64_t params = 0;
  for (const std::string& name : w.names()) {
    const moe::TensorMeta& meta = w.meta(name);
    ++types[moe::storageTypeName(meta.type)];
    const int64_t n = moe::numel(meta.shape);
    params += n;
    buf.assign(static_cast<size_t>(n), NAN);
    w.readF32(name, buf.data());
    int64_t bad = 0;
    for (float x : buf) bad += !std::isfinite(x);
    EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << n << " values not finite";
  }
  std::cout << want.file << ": GGUF v" << f.version() << ", " << w.names().size() << " tensors, " << params
            << " parameters; types:";
  for (const auto& [type, count] : types) std::cout << " " << type << " x" << count;
  std::cout << "\n";

  // Tokenizer metadata, as a tokenizer builder reads it.
  EXPECT_EQ(f.getString("tokenizer.ggml.model"), want.tokenizerModel);
  EXPECT_EQ(f.getString("tokenizer.ggml.pre"), want.tokenizerPre);
  const auto& tokens = f.getStringArray("tokenizer.ggml.tokens");
  EXPECT_GT(tokens.size(), 1000u);
  const size_t vocab = tokens.size();
  if (f.has("tokenizer.ggml.scores")) {
    EXPECT_EQ(f.getF32Array("tokenizer.ggml.scores").size(), vocab);
  }
  if (f.has("tokenizer.ggml.token_type")) {
    EXPECT_EQ(f.getI32Array("tokenizer.ggml.token_type").size(), vocab);
  }
  for (const char* id : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    ASSERT_TRUE(f.has(id)) << id;
    EXPECT_LT(static_cast<size_t>(f.getInt(id)), vocab) << id;
  }
  // The token embedding's rows are the vocabulary.
  ASSERT_TRUE(w.has("token_embd.weight"));
  EXPECT_EQ(static_cast<size_t>(w.meta("token_embd.weight").shape[0]), vocab);

  std::cout << want.file << " tokenizer: model=" << f.getString("tokenizer.ggml.model")
            << " pre=" << f.getString("tokenizer.ggml.pre") << " tokens=" << vocab;
  if (f.has("tokenizer.ggml.merges")) std::cout << " merges=" << f.getStringArray("tokenizer.ggml.merges").size();
  std::cout << " bos=" << f.getInt("tokenizer.ggml.bos_token_id") << " eos=" << f.getInt("tokenizer.ggml.eos_token_id");
  for (const char* flag : {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                           "tokenizer.ggml.add_space_prefix"})
    if (f.has(flag)) std::cout << " " << flag + 15 << "=" << f.getBool(flag);
  std::cout << "\n  keys:";
  for (const moe::GgufValue& v : f.metadata())
    if (v.key().rfind("tokenizer.", 0) == 0) std::cout << " " << v.key() << "(" << v.typeName() << ")";
  std::cout << "\n";
}

}  // namespace

TEST(GgufModels, SmolLM2) { checkModel({"smollm2-135m-instruct.gguf", "llama", "gpt2", "smollm"}); }

TEST(GgufModels, Gemma3) { checkModel({"gemma-3-270m.gguf", "gemma3", "llama", "default"}); }
