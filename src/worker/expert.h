// Expert: one causal LM loaded for inference, the forward engine a worker rank runs.
//
// The model runs in libtorch (src/worker/torch/); this header is torch-free (pimpl), so the rest
// of the program builds without libtorch headers. forward() takes a batch of prompts as token ids,
// of different lengths, and returns for each prompt the logits of its last token and the last
// hidden state (after the final norm) there. Prompts are left-padded to the longest one; padding
// is masked out of attention and position ids count real tokens only, so a prompt gives the same
// numbers in any batch as alone (within float rounding: 1e-5 in float32 on the test models).
//
// Weights are converted to the run dtype one tensor at a time as they are read (never two full
// copies of the model in memory). Devices: cpu, or cuda[:N] where libtorch was built with CUDA.
// dtypes: fp32, bf16, fp16; "auto" is fp32 on cpu and bf16 on cuda.
//
// Not thread-safe: one Expert serves one caller at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "worker/model_config.h"

namespace moe {

class WeightSource;

struct EngineOptions {
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string dtype = "auto";  // auto | fp32 | bf16 | fp16
  // Threads for the forward: libtorch's intra-op threads (at::set_num_threads), or, with a
  // pthreads OpenBLAS (Debian's libtorch), the BLAS's own pool (see configureThreads in
  // torch/expert.cpp); 0 = the libraries' defaults.
  int threads = 0;
  // Prefix cache: compute the longest token prefix a batch's prompts share once, keep its keys and
  // values, and reuse them for the batch and later batches that start the same way (the 5-shot
  // header of one subject). Results equal the uncached path within float rounding.
  bool prefixCache = true;
  // Shortest shared prefix worth caching, in tokens.
  int minPrefix = 16;
};

// What the last forward() did, for the run's cost accounting.
struct ForwardStats {
  int64_t promptTokens = 0;    // tokens of the batch's prompts (sum of their lengths)
  int64_t computedTokens = 0;  // tokens run through the model: promptTokens minus cachedTokens
  int64_t cachedTokens = 0;    // prompt tokens whose keys/values came from the prefix cache
  int64_t paddedTokens = 0;    // batch rows x longest computed length (attention's padded work)
  double seconds = 0;          // wall time of forward(), host copies included
};

// Last-token logits left where the model computed them (Expert::forward's second form):
// [rows, vocab] row-major in the run dtype, on the model's device. `owner` holds the memory; the
// pointer stays valid while this object (or a copy) lives, whatever later forwards do. On cuda the
// values are complete (forward waits for its device work), so a consumer may use any stream.
struct ModelLogits {
  const void* data = nullptr;
  kernels::DType dtype = kernels::DType::F32;
  int64_t rows = 0, vocab = 0;
  int cudaDevice = -1;  // the device index on cuda, -1 on cpu
  std::shared_ptr<const void> owner;
  bool onCuda() const { return cudaDevice >= 0; }
};

class Expert {
 public:
  // Loads a Hugging Face model folder (config.json + safetensors) or a .gguf file (its metadata
  // and tensors mapped by worker/gguf_model.h). Throws moe::Error naming the
  // folder or file and the problem (bad config value, missing tensor, wrong shape, unusable device...).
  static std::unique_ptr<Expert> load(const std::string& modelPath, const EngineOptions& options);
  // Builds from an already parsed config and an open weight source (any format); the weights are
  // copied, so `weights` may be closed afterwards.
  static std::unique_ptr<Expert> create(const ModelConfig& config, const WeightSource& weights,
                                        const EngineOptions& options);
  ~Expert();
  Expert(const Expert&) = delete;
  Expert& operator=(const Expert&) = delete;

  const ModelConfig& config() const;
  int64_t vocabSize() const;
  int64_t hiddenSize() const;
  int64_t numLayers() const;
  const std::string& device() const;  // resolved, e.g. "cpu" or "cuda:0"
  int cudaDevice() const;             // the CUDA device index, -1 on cpu
  const std::string& dtype() const;   // resolved: fp32 | bf16 | fp16
  // "LlamaForCausalLM, 2 layers, ... on cpu, fp32"
  std::string describe() const;

  // Runs a batch of prompts (token ids, each non-empty and < vocabSize()); with the prefix cache
  // on, the tokens the prompts share are computed once (see EngineOptions). `logits` becomes
  // [batch.size() * vocabSize()] float32, row-major, the last token's logits of each prompt;
  // `hidden`, when given, [batch.size() * hiddenSize()]. An empty batch gives empty outputs.
  void forward(const std::vector<std::vector<int32_t>>& batch, std::vector<float>& logits,
               std::vector<float>* hidden = nullptr);
  // The same forward, the logits left on the model's device in the run dtype (no copy, no
  // conversion: widened to float32 they equal the first form's, bit for bit). For the device
  // mixture (worker/mixture_device.h). `hidden`, when given, is copied to the host as above.
  void forward(const std::vector<std::vector<int32_t>>& batch, ModelLogits& logits,
               std::vector<float>* hidden = nullptr);

  // Mixtral: how often each layer's router picked each expert for each prompt's tokens in the
  // last forward, [batch, numLayers, numExperts] row-major (padding not counted). Empty for
  // dense models.
  const std::vector<int32_t>& routerCounts() const;

  // Statistics of the last forward() (zeros before the first).
  const ForwardStats& lastForwardStats() const;
  // Bytes of the model's parameters on its device in the run dtype (embedding counted once when
  // tied).
  int64_t modelBytes() const;

 private:
  struct Impl;
  explicit Expert(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe
