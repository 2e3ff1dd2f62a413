// The libtorch engine against transformers on the tiny fixtures (tests/fixtures/make_tiny_models.py):
// last-token logits and last hidden states within 1e-4 in float32, one prompt at a time and as a
// left-padded batch, a padded row equal to the row alone within 2e-5, Mixtral's router counts
// exactly, the bfloat16 checkpoint both upcast (1e-4) and run in bfloat16 (stated looser bound),
// sharded equal to unsharded; and load errors that name the tensor, the shapes, the key.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <iterator>
#include <sstream>

#include "common/error.h"
#include "worker/expert.h"
#include "worker/safetensors.h"
#include "worker/torch/torch_runtime.h"
#include "test_util.h"

using moe::test::errorOf;

namespace fs = std::filesystem;
using moe::EngineOptions;
using moe::Expert;
using Json = nlohmann::json;
using Batch = std::vector<std::vector<int32_t>>;

namespace {
const std::string kModels = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/models/";

constexpr double kF32Tol = 1e-4;     // engine vs transformers, float32
// A padded row vs the same prompt alone: float rounding of different matrix shapes, which depends on
// the BLAS: worst measured 7.6e-6 (libtorch 1.13 + OpenBLAS, Debian) and 1.31e-5 (libtorch 2.7.1 +
// its bundled MKL), both Qwen2. A masking or position error moves logits by 1e-2 and more.
constexpr double kPaddedTol = 2e-5;
// bfloat16 run vs transformers' bfloat16 run: 8-bit mantissas, rounded at different points
// (fused q/k/v, packed tokens), on logits of magnitude ~10.
constexpr double kBf16LogitTol = 0.25;
constexpr double kBf16HiddenTol = 0.1;

Json readJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return Json::parse(in);
}


EngineOptions opts(const std::string& dtype = "auto") {
  EngineOptions o;
  o.dtype = dtype;
  o.threads = 2;
  return o;
}

Batch prompts(const Json& g) {
  Batch b;
  for (const Json& p : g["prompts"]) b.push_back(p.get<std::vector<int32_t>>());
  return b;
}

// Largest |a - b| over one row of `got` ([rows * n]) against the golden list of rows.
double maxDiff(const std::vector<float>& got, size_t row, const Json& want) {
  std::vector<double> w = want.get<std::vector<double>>();
  EXPECT_GE(got.size(), (row + 1) * w.size());
  double m = 0;
  for (size_t i = 0; i < w.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(got[row * w.size() + i]) - w[i]));
  return m;
}

double maxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

struct Outputs {
  std::vector<float> logits, hidden;
  std::vector<int32_t> counts;
};
Outputs run(Expert& e, const Batch& batch) {
  Outputs r;
  e.forward(batch, r.logits, &r.hidden);
  r.counts = e.routerCounts();
  return r;
}

// Checks one fixture against a golden section ({"single": ..., "batch": ...}) and prints the
// largest logit error seen.
void checkGolden(Expert& e, const Json& section, const Batch& ps, double logitTol, double hiddenTol,
                   const std::string& what) {
  const int64_t V = e.vocabSize(), H = e.hiddenSize();
  double worst = 0, worstHidden = 0, worstPadded = 0;
  std::vector<Outputs> alone;
  for (size_t i = 0; i < ps.size(); ++i) {
    Outputs r = run(e, {ps[i]});
    ASSERT_EQ(r.logits.size(), size_t(V)) << what;
    EXPECT_EQ(r.hidden.size(), size_t(H)) << what;
    double dl = maxDiff(r.logits, 0, section["single"]["logits"][i]);
    double dh = maxDiff(r.hidden, 0, section["single"]["hidden"][i]);
    EXPECT_LE(dl, logitTol) << what << ": prompt " << i << " (" << ps[i].size() << " tokens) logits";
    EXPECT_LE(dh, hiddenTol) << what << ": prompt " << i << " hidden";
    worst = std::max(worst, dl);
    worstHidden = std::max(worstHidden, dh);
    if (section["single"].contains("router_counts")) {
      std::vector<int32_t> want;
      for (const Json& layer : section["single"]["router_counts"][i])
        for (const Json& c : layer) want.push_back(c.get<int32_t>());
      EXPECT_EQ(r.counts, want) << what << ": prompt " << i << " router counts";
    } else {
      EXPECT_TRUE(r.counts.empty()) << what;
    }
    alone.push_back(std::move(r));
  }
  Outputs b = run(e, ps);
  ASSERT_EQ(b.logits.size(), ps.size() * size_t(V)) << what;
  for (size_t i = 0; i < ps.size(); ++i) {
    double dl = maxDiff(b.logits, i, section["batch"]["logits"][i]);
    EXPECT_LE(dl, logitTol) << what << ": batch row " << i << " logits";
    EXPECT_LE(maxDiff(b.hidden, i, section["batch"]["hidden"][i]), hiddenTol) << what << ": batch row " << i;
    worst = std::max(worst, dl);
    // The padded row against the same prompt alone, both ours.
    std::vector<float> row(b.logits.begin() + i * V, b.logits.begin() + (i + 1) * V);
    worstPadded = std::max(worstPadded, maxDiff(row, alone[i].logits));
    if (logitTol <= kF32Tol) {
      EXPECT_LE(maxDiff(row, alone[i].logits), kPaddedTol) << what << ": padded row " << i;
    }
  }
  if (section["batch"].contains("router_counts")) {
    std::vector<int32_t> want;
    for (const Json& row : section["batch"]["router_counts"])
      for (const Json& layer : row)
        for (const Json& c : layer) want.push_back(c.get<int32_t>());
    EXPECT_EQ(b.counts, want) << what << ": batch router counts";
  }
  std::printf("%-14s max |logit - transformers| %.3g, |hidden - transformers| %.3g, |padded - alone| %.3g\n",
              what.c_str(), worst, worstHidden, worstPadded);
}

void checkFixture(const std::string& name) {
  Json g = readJson(kModels + name + "/golden.json");
  auto e = Expert::load(kModels + name, opts());
  EXPECT_EQ(e->config().architecture, g["architecture"].get<std::string>());
  EXPECT_EQ(e->dtype(), "fp32");
  EXPECT_EQ(e->device(), "cpu");
  checkGolden(*e, g, prompts(g), kF32Tol, kF32Tol, name);
}

// A copy of a fixture in a fresh temporary folder, removed at the end of the test.
class TempModel {
 public:
  explicit TempModel(const std::string& fixture) {
    char tmpl[] = "/tmp/moe_model_XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::copy(kModels + fixture, dir_, fs::copy_options::recursive);
  }
  ~TempModel() { fs::remove_all(dir_); }
  const std::string& dir() const { return dir_; }
  std::string read(const std::string& file) const {
    std::ifstream in(dir_ + "/" + file, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void write(const std::string& file, const std::string& text) const {
    std::ofstream(dir_ + "/" + file, std::ios::binary) << text;
  }
  // Replaces the first occurrence of `from` in a file (same length keeps binary files valid).
  void replace(const std::string& file, const std::string& from, const std::string& to) const {
    std::string s = read(file);
    size_t at = s.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in " << file;
    s.replace(at, from.size(), to);
    write(file, s);
  }

 private:
  std::string dir_;
};
}  // namespace

TEST(ModelGolden, Llama) { checkFixture("llama"); }
TEST(ModelGolden, Mistral) { checkFixture("mistral"); }
TEST(ModelGolden, Qwen2) { checkFixture("qwen2"); }
TEST(ModelGolden, Mixtral) { checkFixture("mixtral"); }
TEST(ModelGolden, Gpt2) { checkFixture("gpt2"); }
TEST(ModelGolden, Gemma3) { checkFixture("gemma3"); }

TEST(ModelGolden, ShardedEqualsUnsharded) {
  Json g = readJson(kModels + "llama/golden.json");
  Batch ps = prompts(g);
  auto one = Expert::load(kModels + "llama", opts());
  auto sharded = Expert::load(kModels + "llama_sharded", opts());
  Outputs a = run(*one, ps), b = run(*sharded, ps);
  EXPECT_EQ(a.logits, b.logits);
  EXPECT_EQ(a.hidden, b.hidden);
  checkGolden(*sharded, g, ps, kF32Tol, kF32Tol, "llama_sharded");
}

TEST(ModelGolden, Bf16Checkpoint) {
  Json g = readJson(kModels + "llama_bf16/golden.json");
  Batch ps = prompts(g);
  // Upcast to float32 (the CPU default): exact bf16 -> f32 conversion, so float32 tolerances.
  auto f32 = Expert::load(kModels + "llama_bf16", opts());
  EXPECT_EQ(f32->dtype(), "fp32");
  checkGolden(*f32, g, ps, kF32Tol, kF32Tol, "llama_bf16");
  // Outputs in bfloat16, against transformers run in bfloat16.
  auto bf16 = Expert::load(kModels + "llama_bf16", opts("bf16"));
  EXPECT_EQ(bf16->dtype(), "bf16");
  checkGolden(*bf16, g["bf16"], ps, kBf16LogitTol, kBf16HiddenTol, "llama bf16");
}

TEST(ModelGolden, Float32FromBf16RunAgreesWithFloat32Model) {
  // The bf16 run of a float32 checkpoint stays near the float32 answer (loose, but not vacuous:
  // the logits spread over several units; measured 0.16).
  Json g = readJson(kModels + "mixtral/golden.json");
  Batch ps = prompts(g);
  auto bf16 = Expert::load(kModels + "mixtral", opts("bf16"));
  std::vector<float> logits;
  bf16->forward(ps, logits);
  double worst = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    worst = std::max(worst, maxDiff(logits, i, g["batch"]["logits"][i]));
    EXPECT_LE(maxDiff(logits, i, g["batch"]["logits"][i]), 0.5) << i;
  }
  std::printf("mixtral run in bf16: max |logit - transformers float32| %.3g\n", worst);
}

TEST(ModelGolden, Qwen2SlidingWindowWhenEnabled) {
  // use_sliding_window true with max_window_layers 1: layer 1 sees only the last 16 keys. A prompt
  // no longer than the window is unchanged; a longer one changes (transformers 4.51's eager
  // attention applies the window to every layer, so there is no golden for this).
  Json g = readJson(kModels + "qwen2/golden.json");
  Batch ps = prompts(g);
  TempModel m("qwen2");
  m.replace("config.json", "\"use_sliding_window\": false", "\"use_sliding_window\": true");
  auto windowed = Expert::load(m.dir(), opts());
  EXPECT_EQ(windowed->config().slidingWindow, 16);
  EXPECT_EQ(windowed->config().slidingWindowFromLayer, 1);
  Outputs r = run(*windowed, ps);
  const int64_t V = windowed->vocabSize();
  for (size_t i = 0; i < ps.size(); ++i) {
    double d = maxDiff(r.logits, i, g["batch"]["logits"][i]);
    if (ps[i].size() <= 16) {
      EXPECT_LE(d, kF32Tol) << "prompt " << i << " fits in the window";
    } else {
      EXPECT_GT(d, 1e-2) << "prompt " << i << " (" << ps[i].size() << " tokens) should see the window";
    }
  }
  // The 17-token prompt, left-padded to 40 in the batch, gives what it gives alone: the window
  // is measured over its own tokens, not over the padding.
  ASSERT_EQ(ps[2].size(), 17u);
  std::vector<float> alone;
  windowed->forward({ps[2]}, alone);
  std::vector<float> row(r.logits.begin() + 2 * V, r.logits.begin() + 3 * V);
  EXPECT_LE(maxDiff(row, alone), kPaddedTol);
}

TEST(ModelGolden, Fp16OnCpuRunsOrSaysWhy) {
  // libtorch 1.13 has no fp16 matmul on CPU: the load must say so; where it exists (2.x), the
  // fp16 run must stay near the float32 golden.
  Json g = readJson(kModels + "gpt2/golden.json");
  std::unique_ptr<Expert> e;
  std::string msg = errorOf([&] { e = Expert::load(kModels + "gpt2", opts("fp16")); });
  if (!e) {
    EXPECT_NE(msg.find("dtype fp16 is not supported on cpu by this libtorch"), std::string::npos) << msg;
    return;
  }
  std::vector<float> logits;
  e->forward(prompts(g), logits);
  for (size_t i = 0; i < g["prompts"].size(); ++i) EXPECT_LE(maxDiff(logits, i, g["batch"]["logits"][i]), 0.1) << i;
}

// The logits left on the model's device (the device mixture's input) are the host copy's values
// in the run dtype: widened, bit for bit equal; the same hidden states and statistics; the memory
// outlives later forwards. On cpu the "device" is the host, so this runs the real code path here.
void checkModelLogits(const std::string& fixture, const std::string& dtype, moe::kernels::DType want) {
  Json g = readJson(kModels + fixture + "/golden.json");
  Batch ps = prompts(g);
  auto e = Expert::load(kModels + fixture, opts(dtype));
  const std::string what = fixture + " " + dtype;
  std::vector<float> hostLogits, hostHidden, hidden;
  e->forward(ps, hostLogits, &hostHidden);
  const moe::ForwardStats hostStats = e->lastForwardStats();
  moe::ModelLogits m;
  e->forward(ps, m, &hidden);
  const moe::ForwardStats stats = e->lastForwardStats();
  ASSERT_NE(m.data, nullptr) << what;
  EXPECT_EQ(m.dtype, want) << what;
  EXPECT_EQ(m.rows, static_cast<int64_t>(ps.size())) << what;
  EXPECT_EQ(m.vocab, e->vocabSize()) << what;
  EXPECT_FALSE(m.onCuda()) << what;
  EXPECT_EQ(e->cudaDevice(), -1) << what;
  EXPECT_EQ(hidden, hostHidden) << what;
  EXPECT_EQ(stats.promptTokens, hostStats.promptTokens) << what;
  EXPECT_EQ(stats.computedTokens + stats.cachedTokens, stats.promptTokens) << what;
  EXPECT_GT(stats.seconds, 0) << what;
  // Later forwards (another batch, the host form) leave this batch's logits as they were.
  std::vector<float> other;
  e->forward({ps[0]}, other);
  moe::ModelLogits second;
  e->forward({ps.back()}, second);
  ASSERT_EQ(hostLogits.size(), static_cast<size_t>(m.rows * m.vocab)) << what;
  size_t differ = 0;
  for (size_t i = 0; i < hostLogits.size(); ++i)
    differ += moe::kernels::loadAsFloat(m.data, m.dtype, i) != hostLogits[i];
  EXPECT_EQ(differ, 0u) << what << ": logits that differ from the host copy";
  // An empty batch gives no rows.
  e->forward({}, m);
  EXPECT_EQ(m.rows, 0) << what;
  EXPECT_EQ(m.data, nullptr) << what;
}

TEST(EngineModelLogits, Float32EqualTheHostCopy) { checkModelLogits("llama", "fp32", moe::kernels::DType::F32); }
TEST(EngineModelLogits, Bf16StayBf16AndWidenToTheHostCopy) {
  checkModelLogits("llama_bf16", "bf16", moe::kernels::DType::BF16);
}
// Gemma 3: final logit soft-capping applied before the logits are handed over.
TEST(EngineModelLogits, Gemma3SoftcappedInBf16) { checkModelLogits("gemma3", "bf16", moe::kernels::DType::BF16); }

TEST(ModelGolden, MissingLmHeadMeansTiedEmbeddings) {
  // llama is untied; without lm_head.weight the engine must use the embedding as the LM head:
  // hidden states unchanged, logits = hidden . embedding rows.
  Json g = readJson(kModels + "llama/golden.json");
  TempModel m("llama");
  m.replace("model.safetensors", "\"lm_head.weight\"", "\"lm_head.wxight\"");
  auto e = Expert::load(m.dir(), opts());
  Batch ps = prompts(g);
  Outputs r = run(*e, ps);
  auto weights = moe::openSafetensors(kModels + "llama");
  const int64_t V = e->vocabSize(), H = e->hiddenSize();
  std::vector<float> embed(static_cast<size_t>(V * H));
  weights->readF32("model.embed_tokens.weight", embed.data());
  double worst = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_LE(maxDiff(r.hidden, i, g["batch"]["hidden"][i]), kF32Tol) << i;
    for (int64_t v = 0; v < V; ++v) {
      double dot = 0;
      for (int64_t h = 0; h < H; ++h) dot += double(r.hidden[i * H + h]) * embed[v * H + h];
      worst = std::max(worst, std::fabs(dot - r.logits[i * V + v]));
    }
  }
  EXPECT_LE(worst, kF32Tol);
  EXPECT_GT(maxDiff(r.logits, 0, g["batch"]["logits"][0]), 0.1);  // not the untied head's logits
}

TEST(ModelErrors, MissingTensor) {
  TempModel m("llama");
  // Renaming a tensor in the safetensors header (same length) leaves a valid file without it.
  m.replace("model.safetensors", "\"model.norm.weight\"", "\"model.norX.weight\"");
  std::string e = errorOf([&] { Expert::load(m.dir(), opts()); });
  EXPECT_NE(e.find(m.dir()), std::string::npos) << e;
  EXPECT_NE(e.find("missing tensor 'model.norm.weight' (expected shape [64]"), std::string::npos) << e;
}

TEST(ModelErrors, WrongShape) {
  TempModel m("llama");
  m.replace("config.json", "\"intermediate_size\": 128", "\"intermediate_size\": 96");
  std::string e = errorOf([&] { Expert::load(m.dir(), opts()); });
  EXPECT_NE(e.find(m.dir()), std::string::npos) << e;
  EXPECT_NE(e.find("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [128, 64], expected [96, 64]"),
            std::string::npos)
      << e;
}

TEST(ModelErrors, UnsupportedArchitecture) {
  TempModel m("llama");
  m.replace("config.json", "\"LlamaForCausalLM\"", "\"FalconForCausalLM\"");
  std::string e = errorOf([&] { Expert::load(m.dir(), opts()); });
  EXPECT_NE(e.find(m.dir() + "/config.json: key 'architectures': unsupported architecture \"FalconForCausalLM\""),
            std::string::npos)
      << e;
}

TEST(ModelErrors, BadConfigValue) {
  TempModel m("mixtral");
  m.replace("config.json", "\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 0");
  std::string e = errorOf([&] { Expert::load(m.dir(), opts()); });
  EXPECT_NE(e.find(m.dir() + "/config.json: key 'num_experts_per_tok': expected an integer >= 1, got 0"),
            std::string::npos)
      << e;
}

TEST(ModelErrors, BadInputsAndOptions) {
  auto e = Expert::load(kModels + "gpt2", opts());
  std::vector<float> logits;
  std::string msg = errorOf([&] { e->forward({{1, 2}, {}}, logits); });
  EXPECT_NE(msg.find("prompt 1 of the batch is empty"), std::string::npos) << msg;
  msg = errorOf([&] { e->forward({{1, 1000}}, logits); });
  EXPECT_NE(msg.find("prompt 0, token 1: id 1000 is outside the vocabulary"), std::string::npos) << msg;
  msg = errorOf([&] { e->forward({std::vector<int32_t>(193, 5)}, logits); });
  EXPECT_NE(msg.find("a prompt of 193 tokens is longer than GPT2LMHeadModel's n_positions 192"), std::string::npos)
      << msg;
  e->forward({}, logits);
  EXPECT_TRUE(logits.empty());

  EngineOptions o = opts("fp64");
  msg = errorOf([&] { Expert::load(kModels + "gpt2", o); });
  EXPECT_NE(msg.find("dtype 'fp64': expected auto, fp32, bf16 or fp16"), std::string::npos) << msg;
  o = opts();
  o.device = "tpu";
  msg = errorOf([&] { Expert::load(kModels + "gpt2", o); });
  EXPECT_NE(msg.find("device 'tpu': expected cpu, cuda or cuda:N"), std::string::npos) << msg;
  if (!moe::torchHasCuda()) {
    o.device = "cuda";
    msg = errorOf([&] { Expert::load(kModels + "gpt2", o); });
    EXPECT_NE(msg.find("device 'cuda'"), std::string::npos) << msg;
  }
}

// OMP_WAIT_POLICY is PASSIVE in every program that links the engine, set before libgomp started
// (src/worker/preinit/openmp_wait_policy.cpp), and only then does libtorch get the requested
// threads beside OpenBLAS's pthreads; under a spinning policy it keeps one.
TEST(EngineThreads, PassiveOpenMpPolicyGivesLibtorchTheThreads) {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  ASSERT_NE(policy, nullptr) << "the engine's .preinit_array did not set OMP_WAIT_POLICY";
  if (std::string(policy) != "PASSIVE") GTEST_SKIP() << "OMP_WAIT_POLICY=" << policy << " set by the environment";
  auto threadsOf = [](const std::string& info) { return info.substr(info.rfind("threads: ")); };
  auto e = Expert::load(kModels + "llama", opts());  // threads = 2
  EXPECT_EQ(threadsOf(moe::torchRuntimeInfo()), "threads: 2");

  auto openblasPthreads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  if (openblasPthreads == nullptr || openblasPthreads() != 1) return;  // one thread pool: nothing to share
  setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
  auto spinning = Expert::load(kModels + "llama", opts());
  EXPECT_EQ(threadsOf(moe::torchRuntimeInfo()), "threads: 1");
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
}

// MOE_TORCH_PROFILE=PREFIX: each forward writes libtorch's operator profile to PREFIX.N.json.
TEST(EngineProfile, WritesAChromeTracePerForward) {
  const fs::path dir = fs::temp_directory_path() / ("moe_profile_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string prefix = (dir / "prof").string();
  auto e = Expert::load(kModels + "llama", opts());
  setenv("MOE_TORCH_PROFILE", prefix.c_str(), 1);
  std::vector<float> logits;
  e->forward({{1, 2, 3, 4}}, logits);
  unsetenv("MOE_TORCH_PROFILE");
  e->forward({{1, 2, 3, 4}}, logits);  // off again: no second file
  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator(dir)) files.push_back(f.path());
  ASSERT_EQ(files.size(), 1u);
  std::ifstream in(files[0]);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(Json::parse(text).empty()) << files[0];
  EXPECT_NE(text.find("aten::mm"), std::string::npos) << files[0];
  fs::remove_all(dir);
}
