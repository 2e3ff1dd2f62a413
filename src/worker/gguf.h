// GGUF files (llama.cpp's format) and GgufWeights, their tensors as a WeightSource.
//
// Layout (little-endian): magic "GGUF", u32 version (2 or 3; v1 had 32-bit counts and is refused),
// u64 tensor count, u64 metadata count; the metadata entries (string key, u32 value type, value);
// the tensor infos (string name, u32 n_dims <= 4, u64 dims innermost first, u32 ggml type, u64
// offset); padding to `general.alignment` (default 32); the data section, which the offsets index.
// A string is a u64 length and that many bytes; an array is a u32 element type, a u64 count and the
// elements (arrays of arrays are refused).
//
// The reader treats the file as untrusted: every count, string length, dimension, offset and byte
// size is checked against what remains of the file before use, with overflow-safe arithmetic;
// offsets must be aligned and each tensor's bytes inside the data section; duplicate keys and
// duplicate tensor names are refused, and so is a row length (dims[0]) that is not a multiple of its
// type's block size. Every error names the file, the key or tensor, and what was expected.
//
// GgufFile parses from a memory range (so it can be fuzzed without files) or owns a MappedFile.
// Metadata values are not copied: strings are views into the file, numbers are decoded on access.
// GgufWeights exposes the tensors with the WeightSource contract: shapes outermost first (the
// reverse of GGUF's dims), readF32 dequantizes, rawData gives the bytes of F32/F16/BF16 tensors.
// Every ggml type parses (its block size comes from ggml's type table), but only the StorageType
// ones can be read as weights; the others are listed by names() and has(), and meta, readF32 and
// rawData throw naming the tensor and the type (e.g. "IQ2_XS"), as SafetensorsWeights does.
// All const methods are safe to call from several threads at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "worker/mapped_file.h"
#include "worker/weights.h"

namespace moe {

// Metadata value types; the numbers are the file's.
enum class GgufType : uint32_t {
  Uint8 = 0, Int8 = 1, Uint16 = 2, Int16 = 3, Uint32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, Uint64 = 10, Int64 = 11, Float64 = 12
};
// "uint8", "int32", "float32", "bool", "string", "array", ... (the gguf package's names, lowercase).
const char* ggufTypeName(GgufType t);

// A ggml tensor type: its name and block layout, from ggml's type table. `storage` is meaningful
// only when `supported` (a type moe-dist can dequantize).
struct GgmlType {
  uint32_t id;
  const char* name;        // "Q4_K", "IQ2_XS", ...
  uint32_t blockElements;  // elements per block (1 for plain types)
  uint32_t blockBytes;     // bytes per block
  bool supported;
  StorageType storage;
};
// nullptr for an id that ggml does not define (or has removed, as Q4_2 and Q4_3).
const GgmlType* ggmlType(uint32_t id);
// The type's name, or "unknown type <id>".
std::string ggmlTypeName(uint32_t id);

// One metadata value: a scalar, a string, or an array of either. Numbers are decoded from the
// file's little-endian bytes on access; strings are views into the file (valid while the GgufFile
// lives). Element accessors take an index (0 for a scalar) and throw moe::Error naming the key
// when the element does not exist or does not have the kind asked for.
class GgufValue {
 public:
  const std::string& key() const { return key_; }
  GgufType type() const { return type_; }
  bool isArray() const { return type_ == GgufType::Array; }
  // The array's element type; the value's own type for a scalar.
  GgufType elementType() const { return elementType_; }
  // Elements in the array; 1 for a scalar.
  uint64_t count() const { return count_; }
  // "uint32", "string", "array of string", ...
  std::string typeName() const;

  // Any integer element, as int64 (a uint64 above INT64_MAX throws).
  int64_t intAt(uint64_t i) const;
  // Any integer element, as uint64 (a negative one throws).
  uint64_t uintAt(uint64_t i) const;
  // A float32 or float64 element.
  double floatAt(uint64_t i) const;
  bool boolAt(uint64_t i) const;
  std::string_view stringAt(uint64_t i) const;
  // Every string of a string (one) or array-of-string value, viewing into the file.
  const std::vector<std::string_view>& strings() const;

 private:
  friend class GgufFile;
  friend struct GgufParser;
  const uint8_t* element(uint64_t i, const char* wanted) const;

  std::string key_;
  GgufType type_ = GgufType::Uint8;
  GgufType elementType_ = GgufType::Uint8;
  uint64_t count_ = 1;
  const uint8_t* data_ = nullptr;          // numeric/bool elements, packed
  std::vector<std::string_view> strings_;  // string elements
};

struct GgufTensorInfo {
  std::string name;
  uint32_t type = 0;               // ggml type id (ggmlType(type) is never nullptr after parsing)
  uint32_t nDims = 0;              // 1..4
  std::array<int64_t, 4> ne{};     // dims as stored, innermost (the row length) first; 1 past nDims
  int64_t numel = 0;
  uint64_t offset = 0;             // from the start of the data section, a multiple of the alignment
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;   // its first byte in the file image

  // Outermost first, as PyTorch sees the tensor (the reverse of ne[0..nDims)).
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  static constexpr uint32_t kDefaultAlignment = 32;
  static constexpr uint32_t kMaxDims = 4;

  // Parses the file image [data, data + size); `name` is used in error messages. The result keeps
  // pointers into the range, which must outlive it.
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& name);
  // Maps and parses `path`; the result owns the mapping.
  static GgufFile open(const std::string& path);
  bool mapped() const { return file_.data() != nullptr; }  // opened from a file (not a caller's memory)

  GgufFile(GgufFile&&) = default;
  GgufFile& operator=(GgufFile&&) = default;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t dataOffset() const { return dataOffset_; }  // where the data section starts
  uint64_t dataSize() const { return dataSize_; }

  // ---- metadata -------------------------------------------------------------------------------
  // Every entry, in file order (the raw view, e.g. for a tokenizer builder).
  const std::vector<GgufValue>& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  const GgufValue& get(const std::string& key) const;   // throws naming the key when absent

  // Typed getters: the value must have exactly that type; otherwise moe::Error naming the file,
  // the key, its actual type and the expected one.
  uint8_t getU8(const std::string& key) const;
  int8_t getI8(const std::string& key) const;
  uint16_t getU16(const std::string& key) const;
  int16_t getI16(const std::string& key) const;
  uint32_t getU32(const std::string& key) const;
  int32_t getI32(const std::string& key) const;
  uint64_t getU64(const std::string& key) const;
  int64_t getI64(const std::string& key) const;
  float getF32(const std::string& key) const;
  double getF64(const std::string& key) const;
  bool getBool(const std::string& key) const;
  std::string getString(const std::string& key) const;
  // Any integer scalar type, as int64 (writers disagree on the width of ids and counts).
  int64_t getInt(const std::string& key) const;

  // Arrays with exactly that element type. String arrays are views into the file, not copies.
  const std::vector<std::string_view>& getStringArray(const std::string& key) const;
  std::vector<float> getF32Array(const std::string& key) const;
  std::vector<int32_t> getI32Array(const std::string& key) const;
  std::vector<uint32_t> getU32Array(const std::string& key) const;
  std::vector<bool> getBoolArray(const std::string& key) const;
  // An array of any integer element type, as int64.
  std::vector<int64_t> getIntArray(const std::string& key) const;

  // ---- tensors --------------------------------------------------------------------------------
  // In file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* findTensor(const std::string& tensorName) const;  // nullptr when absent

 private:
  friend struct GgufParser;
  GgufFile() = default;
  const GgufValue& typed(const std::string& key, GgufType type) const;
  const GgufValue& typedArray(const std::string& key, GgufType elementType) const;

  MappedFile file_;  // empty when parsed from a caller's memory range
  std::string name_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t dataOffset_ = 0;
  uint64_t dataSize_ = 0;
  std::vector<GgufValue> metadata_;
  std::unordered_map<std::string, size_t> keyIndex_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensorIndex_;
};

// A GGUF file's tensors as a WeightSource, and its metadata through gguf().
class GgufWeights : public WeightSource {
 public:
  explicit GgufWeights(const std::string& path);
  // Wraps an already parsed file (e.g. one parsed from memory); its name() is the origin.
  explicit GgufWeights(GgufFile file);

  std::vector<std::string> names() const override;
  bool has(const std::string& name) const override;
  const TensorMeta& meta(const std::string& name) const override;
  void readF32(const std::string& name, float* out) const override;
  const void* rawData(const std::string& name) const override;
  const std::string& origin() const override { return file_.name(); }
  void release(const std::string& name) const override;

  const GgufFile& gguf() const { return file_; }

 private:
  struct Entry {
    size_t index;     // into gguf().tensors()
    TensorMeta meta;  // set when the type is supported
  };
  const Entry& entry(const std::string& name) const;  // throws when missing or unsupported

  GgufFile file_;
  std::unordered_map<std::string, Entry> entries_;
};

// Opens a .gguf file as a WeightSource (a GgufWeights; construct one directly for the metadata).
std::unique_ptr<WeightSource> openGguf(const std::string& path);

}  // namespace moe
