// Hugging Face safetensors checkpoints: one file, or a folder of shards, as a WeightSource.
//
// File layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object mapping
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
// "__metadata__" object of strings; padded with trailing spaces), then the data section, which the
// offsets index. The reader treats the file as untrusted: every field is type-checked, the byte
// size implied by dtype and shape is computed with overflow checks and must equal the offset span,
// spans must lie inside the data section and must not overlap, and duplicate keys (which a plain
// JSON parser would silently collapse) are refused. Every error names the file, the tensor or
// field, and what was expected.
//
// SafetensorsFile parses from a memory range (so the parser can be fuzzed without files) or owns
// a MappedFile. SafetensorsWeights joins one file or the shards named by
// model.safetensors.index.json into one WeightSource; each shard is mapped once. All dtypes of the
// format parse, but only F32, F16 and BF16 tensors can be read as weights: meta, readF32 and
// rawData throw for the others, naming the tensor and its dtype (they are still listed by names()
// and has(), so a loader can tell "not a weight type" from "missing").
// All const methods are safe to call from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "worker/mapped_file.h"
#include "worker/weights.h"

namespace moe {

enum class SafetensorsDtype {
  F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2
};
const char* safetensorsDtypeName(SafetensorsDtype t);
size_t safetensorsDtypeSize(SafetensorsDtype t);  // bytes per element

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype;
  std::vector<int64_t> shape;  // row-major, outermost first; [] is a scalar
  int64_t numel = 0;
  uint64_t begin = 0, end = 0;   // byte span [begin, end) in the data section, as in the header
  const uint8_t* data = nullptr;  // its first byte; not necessarily aligned to the element size
};

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderSize = uint64_t{100} << 20;

  // Parses the file image [data, data + size); `name` is used in error messages. The result keeps
  // pointers into the range, which must outlive it.
  static SafetensorsFile parse(const uint8_t* data, size_t size, const std::string& name);
  // Maps and parses `path`; the result owns the mapping.
  static SafetensorsFile open(const std::string& path);
  bool mapped() const { return file_.data() != nullptr; }  // opened from a file (not a caller's memory)

  SafetensorsFile(SafetensorsFile&&) = default;
  SafetensorsFile& operator=(SafetensorsFile&&) = default;

  const std::string& name() const { return name_; }
  // Sorted by name.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // nullptr when the file has no tensor of that name.
  const SafetensorsTensor* find(const std::string& tensorName) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t headerSize() const { return headerSize_; }  // N, the JSON bytes
  uint64_t dataSize() const { return dataSize_; }      // bytes after the header

 private:
  SafetensorsFile() = default;

  MappedFile file_;  // empty when parsed from a caller's memory range
  std::string name_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  uint64_t headerSize_ = 0;
  uint64_t dataSize_ = 0;
};

class SafetensorsWeights : public WeightSource {
 public:
  // `path` is a model folder (model.safetensors, or the shards listed in
  // model.safetensors.index.json when there is no model.safetensors) or a single .safetensors file.
  static std::unique_ptr<SafetensorsWeights> open(const std::string& path);
  // Joins already parsed files; a tensor name in two files is an error. `origin` names the source.
  SafetensorsWeights(std::string origin, std::vector<SafetensorsFile> files);

  std::vector<std::string> names() const override;
  bool has(const std::string& name) const override;
  const TensorMeta& meta(const std::string& name) const override;
  void readF32(const std::string& name, float* out) const override;
  const void* rawData(const std::string& name) const override;
  const std::string& origin() const override { return origin_; }
  void release(const std::string& name) const override;

  const std::vector<SafetensorsFile>& files() const { return files_; }
  // Any dtype; throws naming the tensor when it is missing.
  const SafetensorsTensor& tensor(const std::string& name) const;

 private:
  struct Entry {
    const SafetensorsTensor* tensor;
    const SafetensorsFile* file;
    TensorMeta meta;  // meaningful only when the dtype is F32, F16 or BF16
    bool readable;
  };
  const Entry& entry(const std::string& name) const;
  const Entry& readable(const std::string& name) const;

  std::string origin_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, Entry> entries_;
};

// The weights of a Hugging Face model folder or of one .safetensors file (SafetensorsWeights::open).
std::unique_ptr<WeightSource> openSafetensors(const std::string& modelDir);

}  // namespace moe
