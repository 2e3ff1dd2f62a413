// Expert: the engine around a Transformer (see worker/expert.h). Turns a batch of token-id prompts
// into left-padded tensors with an attention mask and position ids counted over real tokens (as
// transformers' generate() does: cumsum(mask) - 1), runs the model under InferenceMode and copies
// the last-token logits and hidden states back to host float32 (or leaves the logits on the device).
#include "worker/expert.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <dlfcn.h>
#include <malloc.h>
#include <strings.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "common/error.h"
#include "worker/gguf_model.h"
#include "worker/model_path.h"
#include "worker/safetensors.h"
#include "worker/torch/torch_runtime.h"
#include "worker/torch/transformer.h"

namespace moe {
namespace {

std::string libtorchVersion() { return TORCH_VERSION; }

at::Device parseDevice(const std::string& name) {
  if (name == "cpu") return at::Device(at::kCPU);
  int64_t index = -1;
  if (name == "cuda") {
    index = 0;
  } else if (name.rfind("cuda:", 0) == 0 && name.size() > 5 &&
             name.find_first_not_of("0123456789", 5) == std::string::npos && name.size() < 9) {
    index = std::stoll(name.substr(5));
  } else {
    MOE_THROW("device '", name, "': expected cpu, cuda or cuda:N");
  }
  MOE_CHECK(at::hasCUDA(), "device '", name, "': this libtorch (", libtorchVersion(),
            ") has no CUDA support or sees no GPU; use --device cpu");
  const int64_t count = cudaDeviceCount();
  MOE_CHECK(index < count, "device '", name, "': only ", count, " CUDA device(s) visible");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

at::ScalarType parseDtype(const std::string& name, const at::Device& device, std::string& resolved) {
  std::string n = name;
  if (n == "auto") n = device.is_cuda() ? "bf16" : "fp32";
  if (n == "fp32" || n == "float32") {
    resolved = "fp32";
    return at::kFloat;
  }
  if (n == "bf16" || n == "bfloat16") {
    resolved = "bf16";
    return at::kBFloat16;
  }
  if (n == "fp16" || n == "float16") {
    resolved = "fp16";
    return at::kHalf;
  }
  MOE_THROW("dtype '", name, "': expected auto, fp32, bf16 or fp16");
}

// Some libtorch builds lack kernels for a dtype on a device (libtorch 1.13 has no fp16 matmul on
// CPU): find out at load with one tiny product rather than mid-run.
void probeDtype(const at::Device& device, at::ScalarType dtype, const std::string& dtypeName) {
  try {
    at::Tensor a = at::ones({2, 2}, at::TensorOptions().dtype(dtype).device(device));
    at::Tensor b = at::addmm(a, a, a);
    at::softmax(b, -1, at::kFloat);
    at::rsqrt(b.to(at::kFloat));
  } catch (const c10::Error& e) {
    MOE_THROW("dtype ", dtypeName, " is not supported on ", device.str(), " by this libtorch (", libtorchVersion(),
              "): ", e.what_without_backtrace(), "; use another --dtype");
  }
}

// Debian's libtorch calls OpenBLAS, whose pthreads build keeps its own worker threads beside
// libtorch's OpenMP pool. With both pools at N threads on N cores, each pool's spinning workers
// take the cores the other computes on (measured on 2 cores: 2x slower when idle, 4x under load).
// There the BLAS, where the time goes, gets the threads, and libtorch's own element-wise ops get
// them too only when OpenMP's idle workers sleep instead of spinning. Other builds (MKL or
// OpenBLAS on OpenMP share one pool) just set libtorch's threads.
void configureThreads(int n) {
  using GetParallel = int (*)();
  using SetThreads = void (*)(int);
  auto getParallel = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto setThreads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  constexpr int kOpenBlasPthreads = 1;
  if (getParallel != nullptr && setThreads != nullptr && getParallel() == kOpenBlasPthreads) {
    // OpenBLAS's pthreads run the matrix products; libtorch's OpenMP threads the rest, but only
    // when idle OpenMP threads sleep (openmp_wait_policy.cpp sets PASSIVE unless the user chose):
    // spinning, they take the cores OpenBLAS needs (2 cores, SmolLM-135M shape: 184 tok/s with
    // both pools spinning, 266-286 with libtorch on one thread, 317-369 passive).
    if (n > 0) setThreads(n);
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    const bool passive = policy != nullptr && strcasecmp(policy, "passive") == 0;
    if (!passive)
      at::set_num_threads(1);
    else if (n > 0)
      at::set_num_threads(n);
  } else {
    setTorchThreads(n);
  }
}

// `t` as host float32 into `out`.
void copyToHost(const at::Tensor& t, std::vector<float>& out) {
  at::Tensor h = t.to(at::kCPU, at::kFloat).contiguous();
  out.resize(static_cast<size_t>(h.numel()));
  std::memcpy(out.data(), h.data_ptr<float>(), out.size() * sizeof(float));
}

// Hands the free pages of the C heap back to the system. libtorch's CPU tensors come from malloc;
// glibc raises its mmap threshold as large blocks are freed (up to 32 MiB), after which activations
// and load-time temporaries live in the heap, and freed memory that is not at its top stays
// resident. Called after loading and after each forward: the pages are refaulted by the next
// batch, a few milliseconds against seconds of compute.
void returnFreeHeapPages() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

struct Expert::Impl {
  ModelConfig config;
  std::string deviceName;
  std::string dtypeName;
  at::Device device{at::kCPU};
  std::unique_ptr<Transformer> model;
  std::vector<int32_t> routerCounts;
  ForwardStats stats;
  EngineOptions options;

  // The cached prefix: its token ids, per layer keys/values [1, KVH, P, D], and for Mixtral the
  // experts each prefix token's routers chose [P, layers, topK].
  struct Prefix {
    std::vector<int32_t> ids;
    std::vector<KeyValues> kv;
    at::Tensor selected;
  } prefix;

  // How many leading tokens of every prompt come from the cache for this batch (0: none),
  // computing a new prefix when the cached one does not serve. Returns the prefix tokens computed.
  int64_t preparePrefix(const std::vector<std::vector<int32_t>>& batch, int64_t& use);
  ForwardOutput forwardBatch(const std::vector<std::vector<int32_t>>& batch);
  // The frame of both forward() forms: resets the last forward's results, runs a non-empty batch,
  // hands its logits to `takeLogits`, copies the hidden states, returns freed heap pages, and
  // times all of it.
  template <typename TakeLogits>
  void forwardTimed(const std::vector<std::vector<int32_t>>& batch, std::vector<float>* hidden,
                    TakeLogits&& takeLogits);
  ForwardOutput run(const std::vector<std::vector<int32_t>>& rows, size_t skip, const std::vector<KeyValues>* past,
                    std::vector<KeyValues>* present, bool wantLogits, bool wantSelections);
};

namespace {
int64_t commonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b, int64_t limit) {
  int64_t n = 0;
  while (n < limit && n < static_cast<int64_t>(a.size()) && n < static_cast<int64_t>(b.size()) &&
         a[static_cast<size_t>(n)] == b[static_cast<size_t>(n)])
    ++n;
  return n;
}
}  // namespace

ForwardOutput Expert::Impl::run(const std::vector<std::vector<int32_t>>& rows, size_t skip,
                                const std::vector<KeyValues>* past, std::vector<KeyValues>* present, bool wantLogits,
                                bool wantSelections) {
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  for (const auto& r : rows) T = std::max<int64_t>(T, static_cast<int64_t>(r.size() - skip));
  // Left padding: row b's tokens end at column T - 1. Padding gets token 0 and position 1, which
  // the mask hides (as transformers' generate() fills them).
  at::Tensor ids = at::zeros({B, T}, at::TensorOptions().dtype(at::kLong));
  at::Tensor real = at::zeros({B, T}, at::TensorOptions().dtype(at::kBool));
  at::Tensor pos = at::ones({B, T}, at::TensorOptions().dtype(at::kLong));
  int64_t* idp = ids.data_ptr<int64_t>();
  bool* rp = real.data_ptr<bool>();
  int64_t* pp = pos.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = rows[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(p.size() - skip), start = T - n;
    for (int64_t i = 0; i < n; ++i) {
      idp[b * T + start + i] = p[skip + static_cast<size_t>(i)];
      rp[b * T + start + i] = true;
      pp[b * T + start + i] = static_cast<int64_t>(skip) + i;
    }
  }
  ForwardInput in{ids.to(device), real.to(device), pos.to(device)};
  in.past = past;
  in.present = present;
  in.wantLogits = wantLogits;
  in.wantSelections = wantSelections;
  return model->forward(in);
}

int64_t Expert::Impl::preparePrefix(const std::vector<std::vector<int32_t>>& batch, int64_t& use) {
  use = 0;
  if (!options.prefixCache) return 0;
  // The batch's shared prefix, leaving every prompt at least its last token to compute.
  int64_t shared = static_cast<int64_t>(batch[0].size()) - 1;
  for (const auto& p : batch) shared = std::min<int64_t>(shared, static_cast<int64_t>(p.size()) - 1);
  for (size_t b = 1; b < batch.size() && shared > 0; ++b) shared = commonPrefix(batch[0], batch[b], shared);
  const int64_t minPrefix = std::max(1, options.minPrefix);
  if (shared < minPrefix) return 0;
  // The cached prefix serves when it covers at least half of what this batch shares (the rest is
  // computed with each row's suffix); otherwise this batch's shared prefix replaces it.
  const int64_t reuse = commonPrefix(prefix.ids, batch[0], shared);
  if (reuse >= minPrefix && 2 * reuse >= shared) {
    use = reuse;
    return 0;
  }
  const bool moe = config.family == ModelFamily::Mixtral;
  std::vector<std::vector<int32_t>> row{std::vector<int32_t>(batch[0].begin(), batch[0].begin() + shared)};
  std::vector<KeyValues> kv;
  ForwardOutput o = run(row, 0, nullptr, &kv, /*wantLogits=*/false, moe);
  prefix.ids = std::move(row[0]);
  prefix.kv = std::move(kv);
  prefix.selected = moe ? o.routerSelected : at::Tensor();
  use = shared;
  return shared;
}

Expert::Expert(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Expert::~Expert() = default;

std::unique_ptr<Expert> Expert::load(const std::string& modelPath, const EngineOptions& options) {
  ModelPath p = resolveModelPath(modelPath);
  if (p.format == ModelFormat::Gguf) {
    GgufModelWeights weights(p.path);  // config from the metadata, tensors under Hugging Face names
    return create(weights.config(), weights, options);
  }
  ModelConfig config = parseModelConfig(p.path + "/config.json");
  std::unique_ptr<WeightSource> weights = openSafetensors(p.path);
  return create(config, *weights, options);
}

std::unique_ptr<Expert> Expert::create(const ModelConfig& config, const WeightSource& weights,
                                       const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->options = options;
  impl->device = parseDevice(options.device);
  impl->deviceName = impl->device.str();
  at::ScalarType dtype = parseDtype(options.dtype, impl->device, impl->dtypeName);
  MOE_CHECK(options.threads >= 0, "threads must be >= 0, got ", options.threads);
  configureThreads(options.threads);
  c10::InferenceMode guard;
  probeDtype(impl->device, dtype, impl->dtypeName);
  try {
    impl->model = std::make_unique<Transformer>(config, weights, impl->device, dtype);
  } catch (const c10::Error& e) {
    MOE_THROW(weights.origin(), ": loading the model failed in libtorch: ", e.what_without_backtrace());
  }
  returnFreeHeapPages();
  return std::unique_ptr<Expert>(new Expert(std::move(impl)));
}

const ModelConfig& Expert::config() const { return impl_->config; }
int64_t Expert::vocabSize() const { return impl_->config.vocabSize; }
int64_t Expert::hiddenSize() const { return impl_->config.hiddenSize; }
int64_t Expert::numLayers() const { return impl_->config.numLayers; }
const std::string& Expert::device() const { return impl_->deviceName; }
const std::string& Expert::dtype() const { return impl_->dtypeName; }
int Expert::cudaDevice() const { return impl_->device.is_cuda() ? impl_->device.index() : -1; }
const std::vector<int32_t>& Expert::routerCounts() const { return impl_->routerCounts; }
const ForwardStats& Expert::lastForwardStats() const { return impl_->stats; }
int64_t Expert::modelBytes() const { return impl_->model->parameterBytes(); }

std::string Expert::describe() const {
  return moe::describe(impl_->config) + " on " + impl_->deviceName + ", " + impl_->dtypeName;
}

// Checks the batch, runs it (with the prefix cache), fills routerCounts and the stats but their
// seconds. `batch` is not empty.
ForwardOutput Expert::Impl::forwardBatch(const std::vector<std::vector<int32_t>>& batch) {
  const ModelConfig& c = config;
  const int64_t B = static_cast<int64_t>(batch.size());
  int64_t T = 0, total = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    MOE_CHECK(!batch[b].empty(), "forward: prompt ", b, " of the batch is empty");
    T = std::max<int64_t>(T, static_cast<int64_t>(batch[b].size()));
    total += static_cast<int64_t>(batch[b].size());
    for (size_t i = 0; i < batch[b].size(); ++i) {
      const int32_t id = batch[b][i];
      MOE_CHECK(id >= 0 && id < c.vocabSize, "forward: prompt ", b, ", token ", i, ": id ", id,
                " is outside the vocabulary of ", c.file, " (size ", c.vocabSize, ")");
    }
  }
  if (c.family == ModelFamily::Gpt2)
    MOE_CHECK(T <= c.maxPositions, "forward: a prompt of ", T, " tokens is longer than ", c.architecture,
              "'s n_positions ", c.maxPositions, " (", c.file, ")");

  ForwardOutput out;
  int64_t use = 0, prefixComputed = 0;
  {
    // MOE_TORCH_PROFILE=PREFIX: libtorch's operator profile of each forward, as a Chrome trace
    // PREFIX.N.json (N counts this process's forwards). For benchmarks; off by default.
    static int profiled = 0;
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
    if (const char* prefixPath = std::getenv("MOE_TORCH_PROFILE"))
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(std::string(prefixPath) + "." +
                                                                          std::to_string(profiled++) + ".json");
    c10::InferenceMode guard;
    try {
      prefixComputed = preparePrefix(batch, use);
      std::vector<KeyValues> past;
      if (use > 0) {
        for (const KeyValues& kv : prefix.kv) past.push_back({kv.key.narrow(2, 0, use), kv.value.narrow(2, 0, use)});
      }
      out = run(batch, static_cast<size_t>(use), use > 0 ? &past : nullptr, nullptr, true, false);
    } catch (const c10::Error& e) {
      MOE_THROW(c.file, ": forward failed in libtorch (batch ", B, " x ", T, " tokens on ", deviceName, ", ",
                dtypeName, "): ", e.what_without_backtrace());
    }
  }

  if (out.routerCounts.defined()) {
    at::Tensor rc = out.routerCounts;
    if (use > 0) {
      // The prefix tokens' choices count for every row, as if each prompt had been run whole.
      at::Tensor sel = prefix.selected.narrow(0, 0, use);  // [use, layers, topK]
      const int64_t layers = sel.size(1), E = c.numExperts;
      at::Tensor flat = (at::arange(layers, sel.options()).view({1, layers, 1}) * E + sel).reshape({-1});
      at::Tensor prefixCounts = at::bincount(flat, {}, layers * E).view({1, layers, E});
      rc = rc + prefixCounts;
    }
    rc = rc.to(at::kInt).contiguous();
    routerCounts.assign(rc.data_ptr<int32_t>(), rc.data_ptr<int32_t>() + rc.numel());
  }
  stats.promptTokens = total;
  stats.computedTokens = total - B * use + prefixComputed;
  stats.cachedTokens = stats.promptTokens - stats.computedTokens;
  stats.paddedTokens = B * (T - use);
  return out;
}

template <typename TakeLogits>
void Expert::Impl::forwardTimed(const std::vector<std::vector<int32_t>>& batch, std::vector<float>* hidden,
                                TakeLogits&& takeLogits) {
  const auto started = std::chrono::steady_clock::now();
  routerCounts.clear();
  stats = ForwardStats{};
  if (hidden != nullptr) hidden->clear();
  if (batch.empty()) return;

  ForwardOutput out = forwardBatch(batch);
  takeLogits(out.logits);
  if (hidden != nullptr) copyToHost(out.hidden, *hidden);
  out = ForwardOutput{};
  returnFreeHeapPages();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

void Expert::forward(const std::vector<std::vector<int32_t>>& batch, std::vector<float>& logits,
                     std::vector<float>* hidden) {
  logits.clear();
  impl_->forwardTimed(batch, hidden, [&](const at::Tensor& t) { copyToHost(t, logits); });
}

void Expert::forward(const std::vector<std::vector<int32_t>>& batch, ModelLogits& logits,
                     std::vector<float>* hidden) {
  logits = ModelLogits{};
  logits.vocab = impl_->config.vocabSize;
  impl_->forwardTimed(batch, hidden, [&](const at::Tensor& t) {
    at::Tensor lg = t.contiguous();
    const at::ScalarType type = lg.scalar_type();
    if (type != at::kFloat && type != at::kBFloat16 && type != at::kHalf) lg = lg.to(at::kFloat);
    logits.dtype = lg.scalar_type() == at::kBFloat16 ? kernels::DType::BF16
                   : lg.scalar_type() == at::kHalf   ? kernels::DType::F16
                                                     : kernels::DType::F32;
    logits.rows = lg.size(0);
    logits.vocab = lg.size(1);
    logits.data = lg.data_ptr();
    if (lg.is_cuda()) {
      logits.cudaDevice = lg.device().index();
      // The forward's kernels are done before the logits are handed over: any stream may read
      // them, and the stats' seconds are the forward's, not its enqueueing.
      torch::cuda::synchronize(lg.device().index());
    }
    logits.owner = std::make_shared<const at::Tensor>(std::move(lg));
  });
}

}  // namespace moe
