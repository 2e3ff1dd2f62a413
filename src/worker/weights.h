// WeightSource: the tensors of a checkpoint, by name, whatever the file format.
//
// Implementations: SafetensorsWeights (a Hugging Face folder: one model.safetensors or the shards
// listed in model.safetensors.index.json) and GgufWeights (a .gguf file; quantized blocks are
// dequantized by readF32). Files are memory-mapped; nothing is copied until a tensor is read, and
// a reader converts one tensor at a time, so a loader never holds two full copies of the weights.
// Every method that takes a name throws moe::Error naming the tensor and the file when the
// tensor is missing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// Storage types a tensor can have on disk. F32/F16/BF16 for safetensors; GGUF adds its block types.
enum class StorageType { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K };
const char* storageTypeName(StorageType t);

struct TensorMeta {
  std::string name;
  StorageType type;
  std::vector<int64_t> shape;  // row-major, outermost first (as PyTorch sees it)
  std::string file;            // the file that holds it (for error messages)
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::vector<std::string> names() const = 0;
  virtual bool has(const std::string& name) const = 0;
  virtual const TensorMeta& meta(const std::string& name) const = 0;
  // Converts the whole tensor to float32 into out[numel].
  virtual void readF32(const std::string& name, float* out) const = 0;
  // The stored bytes when the type is F32, F16 or BF16 (row-major, little-endian), so a loader
  // can convert straight to its run dtype; nullptr for block-quantized types.
  virtual const void* rawData(const std::string& name) const = 0;
  // Where the weights come from (folder or file), for messages.
  virtual const std::string& origin() const = 0;
  // The caller has read this tensor and will not read it again soon: a source backed by a file
  // mapping drops the tensor's pages from the resident set (dropMappedPages), so a load peaks at
  // the converted model plus about one tensor. Reading it again stays correct (from the file).
  virtual void release(const std::string& name) const { (void)name; }
};

int64_t numel(const std::vector<int64_t>& shape);

}  // namespace moe
