#include "worker/gguf.h"
#include "worker/mapped_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "common/error.h"
#include "worker/dequantize.h"

namespace moe {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kI64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// ggml's type table (ggml.h enum ggml_type, ggml.c type_traits): id, name, block elements, block
// bytes. Ids 4-5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4 ...) and 36-38 (IQ4_NL_4_4 ...) were removed from
// ggml and are treated as unknown.
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", 1, 4, true, StorageType::F32},
    {1, "F16", 1, 2, true, StorageType::F16},
    {2, "Q4_0", 32, 18, true, StorageType::Q4_0},
    {3, "Q4_1", 32, 20, true, StorageType::Q4_1},
    {6, "Q5_0", 32, 22, true, StorageType::Q5_0},
    {7, "Q5_1", 32, 24, true, StorageType::Q5_1},
    {8, "Q8_0", 32, 34, true, StorageType::Q8_0},
    {9, "Q8_1", 32, 36, false, StorageType::F32},
    {10, "Q2_K", 256, 84, false, StorageType::F32},
    {11, "Q3_K", 256, 110, false, StorageType::F32},
    {12, "Q4_K", 256, 144, true, StorageType::Q4_K},
    {13, "Q5_K", 256, 176, true, StorageType::Q5_K},
    {14, "Q6_K", 256, 210, true, StorageType::Q6_K},
    {15, "Q8_K", 256, 292, false, StorageType::F32},
    {16, "IQ2_XXS", 256, 66, false, StorageType::F32},
    {17, "IQ2_XS", 256, 74, false, StorageType::F32},
    {18, "IQ3_XXS", 256, 98, false, StorageType::F32},
    {19, "IQ1_S", 256, 50, false, StorageType::F32},
    {20, "IQ4_NL", 32, 18, false, StorageType::F32},
    {21, "IQ3_S", 256, 110, false, StorageType::F32},
    {22, "IQ2_S", 256, 82, false, StorageType::F32},
    {23, "IQ4_XS", 256, 136, false, StorageType::F32},
    {24, "I8", 1, 1, false, StorageType::F32},
    {25, "I16", 1, 2, false, StorageType::F32},
    {26, "I32", 1, 4, false, StorageType::F32},
    {27, "I64", 1, 8, false, StorageType::F32},
    {28, "F64", 1, 8, false, StorageType::F32},
    {29, "IQ1_M", 256, 56, false, StorageType::F32},
    {30, "BF16", 1, 2, true, StorageType::BF16},
    {34, "TQ1_0", 256, 54, false, StorageType::F32},
    {35, "TQ2_0", 256, 66, false, StorageType::F32},
    {39, "MXFP4", 32, 17, false, StorageType::F32},
    {40, "NVFP4", 64, 36, false, StorageType::F32},
    {41, "Q1_0", 128, 18, false, StorageType::F32},
};

const char* supportedTypeList() { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"; }

// Bytes of one scalar of a metadata type; 0 for string and array.
uint64_t scalarSize(GgufType t) {
  switch (t) {
    case GgufType::Uint8: case GgufType::Int8: case GgufType::Bool: return 1;
    case GgufType::Uint16: case GgufType::Int16: return 2;
    case GgufType::Uint32: case GgufType::Int32: case GgufType::Float32: return 4;
    case GgufType::Uint64: case GgufType::Int64: case GgufType::Float64: return 8;
    case GgufType::String: case GgufType::Array: return 0;
  }
  return 0;
}

bool isInteger(GgufType t) {
  switch (t) {
    case GgufType::Uint8: case GgufType::Int8: case GgufType::Uint16: case GgufType::Int16:
    case GgufType::Uint32: case GgufType::Int32: case GgufType::Uint64: case GgufType::Int64:
      return true;
    default:
      return false;
  }
}

bool isSigned(GgufType t) {
  return t == GgufType::Int8 || t == GgufType::Int16 || t == GgufType::Int32 || t == GgufType::Int64;
}

uint64_t loadLe(const uint8_t* p, uint64_t n) {
  uint64_t v = 0;
  for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// The integer of type t stored at p, sign-extended into an int64 bit pattern / its magnitude.
struct Integer {
  bool negative;
  uint64_t bits;  // the value when !negative; its two's complement int64 bits when negative
};
Integer loadInteger(const uint8_t* p, GgufType t) {
  const uint64_t n = scalarSize(t);
  uint64_t v = loadLe(p, n);
  if (isSigned(t) && n < 8 && (v >> (8 * n - 1)) != 0) v |= kU64Max << (8 * n);  // sign-extend
  const bool negative = isSigned(t) && (v >> 63) != 0;
  return {negative, v};
}

std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 200)) out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  if (s.size() > 200) out += "...";
  return out + "'";
}

}  // namespace

const char* ggufTypeName(GgufType t) {
  switch (t) {
    case GgufType::Uint8: return "uint8";
    case GgufType::Int8: return "int8";
    case GgufType::Uint16: return "uint16";
    case GgufType::Int16: return "int16";
    case GgufType::Uint32: return "uint32";
    case GgufType::Int32: return "int32";
    case GgufType::Float32: return "float32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::Uint64: return "uint64";
    case GgufType::Int64: return "int64";
    case GgufType::Float64: return "float64";
  }
  return "?";
}

const GgmlType* ggmlType(uint32_t id) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

std::string ggmlTypeName(uint32_t id) {
  const GgmlType* t = ggmlType(id);
  return t ? std::string(t->name) : str("unknown type ", id);
}

// ---- GgufValue ----------------------------------------------------------------------------------

std::string GgufValue::typeName() const {
  if (type_ == GgufType::Array) return str("array of ", ggufTypeName(elementType_));
  return ggufTypeName(type_);
}

const uint8_t* GgufValue::element(uint64_t i, const char* wanted) const {
  MOE_CHECK(i < count_, "metadata key ", quoted(key_), ": element ", i, " requested, the value has ", count_);
  MOE_CHECK(data_ != nullptr, "metadata key ", quoted(key_), " is ", typeName(), ", not ", wanted);
  return data_ + i * scalarSize(elementType_);
}

int64_t GgufValue::intAt(uint64_t i) const {
  MOE_CHECK(isInteger(elementType_), "metadata key ", quoted(key_), " is ", typeName(), ", not an integer");
  const Integer v = loadInteger(element(i, "an integer"), elementType_);
  MOE_CHECK(v.negative || v.bits <= kI64Max, "metadata key ", quoted(key_), ": ", v.bits,
            " does not fit in int64");
  return static_cast<int64_t>(v.bits);
}

uint64_t GgufValue::uintAt(uint64_t i) const {
  MOE_CHECK(isInteger(elementType_), "metadata key ", quoted(key_), " is ", typeName(), ", not an integer");
  const Integer v = loadInteger(element(i, "an integer"), elementType_);
  MOE_CHECK(!v.negative, "metadata key ", quoted(key_), ": ", static_cast<int64_t>(v.bits),
            " is negative, expected an unsigned value");
  return v.bits;
}

double GgufValue::floatAt(uint64_t i) const {
  if (elementType_ == GgufType::Float32) {
    const uint32_t bits = static_cast<uint32_t>(loadLe(element(i, "a float"), 4));
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  MOE_CHECK(elementType_ == GgufType::Float64, "metadata key ", quoted(key_), " is ", typeName(),
            ", not a float");
  const uint64_t bits = loadLe(element(i, "a float"), 8);
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

bool GgufValue::boolAt(uint64_t i) const {
  MOE_CHECK(elementType_ == GgufType::Bool, "metadata key ", quoted(key_), " is ", typeName(), ", not bool");
  return *element(i, "bool") != 0;
}

std::string_view GgufValue::stringAt(uint64_t i) const {
  MOE_CHECK(elementType_ == GgufType::String, "metadata key ", quoted(key_), " is ", typeName(),
            ", not a string");
  MOE_CHECK(i < strings_.size(), "metadata key ", quoted(key_), ": element ", i, " requested, the value has ",
            strings_.size());
  return strings_[i];
}

const std::vector<std::string_view>& GgufValue::strings() const {
  MOE_CHECK(elementType_ == GgufType::String, "metadata key ", quoted(key_), " is ", typeName(),
            ", not a string");
  return strings_;
}

std::vector<int64_t> GgufTensorInfo::shape() const {
  std::vector<int64_t> s(nDims);
  for (uint32_t i = 0; i < nDims; ++i) s[i] = ne[nDims - 1 - i];
  return s;
}

// ---- parsing ------------------------------------------------------------------------------------

// A cursor over the file image. Every read first checks that the bytes are there; `what` says what
// is being read, so that a truncated or corrupt file is reported with the key or tensor concerned.
struct GgufParser {
  const uint8_t* data;
  size_t size;
  const std::string& file;
  size_t pos = 0;
  std::string context;  // "metadata key 'x'", "tensor 'y'", ...

  uint64_t remaining() const { return size - pos; }

  [[noreturn]] void fail(const std::string& message) const {
    MOE_THROW(file, ": ", context.empty() ? "" : context + ": ", message);
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(str("truncated: ", what, " needs ", n, " bytes at offset ", pos, ", only ", remaining(),
               " remain in the file (", size, " bytes)"));
  }

  const uint8_t* take(uint64_t n, const char* what) {
    need(n, what);
    const uint8_t* p = data + pos;
    pos += static_cast<size_t>(n);
    return p;
  }
  uint32_t u32(const char* what) { return static_cast<uint32_t>(loadLe(take(4, what), 4)); }
  uint64_t u64(const char* what) { return loadLe(take(8, what), 8); }

  std::string_view string(const char* what) {
    const uint64_t n = u64(what);
    if (n > remaining())
      fail(str(what, " has length ", n, " but only ", remaining(), " bytes remain in the file"));
    const uint8_t* p = take(n, what);
    return std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }

  GgufType valueType(uint32_t raw, const char* what) const {
    if (raw > static_cast<uint32_t>(GgufType::Float64))
      fail(str("unknown ", what, " ", raw, " (expected 0..12)"));
    return static_cast<GgufType>(raw);
  }

  // Reads `count` elements of type t (not Array) into v.
  void elements(GgufValue& v, GgufType t, uint64_t count) {
    v.elementType_ = t;
    v.count_ = count;
    if (t == GgufType::String) {
      // Each string takes at least its 8-byte length: bound the count before reserving.
      if (count > remaining() / 8)
        fail(str("array of ", count, " strings cannot fit in the ", remaining(), " bytes that remain"));
      v.strings_.reserve(static_cast<size_t>(count));
      for (uint64_t i = 0; i < count; ++i) v.strings_.push_back(string("string"));
      return;
    }
    const uint64_t elementSize = scalarSize(t);
    if (count > remaining() / elementSize)
      fail(str(count, " elements of ", ggufTypeName(t), " (", elementSize, " bytes each) cannot fit in the ",
               remaining(), " bytes that remain"));
    v.data_ = take(count * elementSize, ggufTypeName(t));
    if (t == GgufType::Bool)
      for (uint64_t i = 0; i < count; ++i)
        if (v.data_[i] > 1) fail(str("bool element ", i, " has byte value ", int(v.data_[i]), ", expected 0 or 1"));
  }

  GgufValue value(std::string key) {
    GgufValue v;
    v.key_ = std::move(key);
    v.type_ = valueType(u32("value type"), "value type");
    if (v.type_ != GgufType::Array) {
      elements(v, v.type_, 1);
      return v;
    }
    const GgufType elementType = valueType(u32("array element type"), "array element type");
    if (elementType == GgufType::Array) fail("arrays of arrays are not supported");
    elements(v, elementType, u64("array length"));
    return v;
  }
};

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  GgufParser p{data, size, name, 0, {}};
  GgufFile f;
  f.name_ = name;

  // Header.
  p.need(4, "magic");
  if (std::memcmp(data, "GGUF", 4) != 0) {
    static const char kHex[] = "0123456789abcdef";
    std::string shown;
    for (int i = 0; i < 4; ++i) shown += {kHex[data[i] >> 4], kHex[data[i] & 15], i < 3 ? ' ' : ')'};
    p.fail(str("not a GGUF file: it starts with bytes (", shown, ", expected \"GGUF\" (47 47 55 46)"));
  }
  p.pos = 4;
  const uint32_t version = p.u32("version");
  if (version == 1)
    p.fail("GGUF version 1 is not supported (it has 32-bit counts); versions 2 and 3 are: re-convert the "
           "model with a recent llama.cpp");
  if ((version & 0xFFFFu) == 0 && (version >> 24) >= 1 && (version >> 24) <= 3)
    p.fail(str("big-endian GGUF (version field ", version, ") is not supported; expected a little-endian file"));
  if (version != 2 && version != 3) p.fail(str("unsupported GGUF version ", version, " (expected 2 or 3)"));
  f.version_ = version;
  const uint64_t tensorCount = p.u64("tensor count");
  const uint64_t kvCount = p.u64("metadata count");

  // Metadata. An entry takes at least 13 bytes (key length, type, one byte of value).
  if (kvCount > p.remaining() / 13)
    p.fail(str("metadata count ", kvCount, " cannot fit in the ", p.remaining(), " bytes that remain"));
  f.metadata_.reserve(static_cast<size_t>(kvCount));
  for (uint64_t i = 0; i < kvCount; ++i) {
    p.context = str("metadata entry ", i);
    std::string key(p.string("key"));
    p.context = str("metadata key ", quoted(key));
    if (f.keyIndex_.count(key)) p.fail("duplicate key");
    f.keyIndex_.emplace(key, f.metadata_.size());
    f.metadata_.push_back(p.value(std::move(key)));
  }

  p.context = "metadata key 'general.alignment'";
  if (const GgufValue* a = f.find("general.alignment")) {
    if (a->type() != GgufType::Uint32) p.fail(str("is ", a->typeName(), ", expected uint32"));
    const uint64_t alignment = a->uintAt(0);
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
      p.fail(str("alignment ", alignment, " is not a power of two"));
    f.alignment_ = static_cast<uint32_t>(alignment);
  }

  // Tensor infos. One takes at least 32 bytes (name length, n_dims, one dim, type, offset).
  p.context.clear();
  if (tensorCount > p.remaining() / 32)
    p.fail(str("tensor count ", tensorCount, " cannot fit in the ", p.remaining(), " bytes that remain"));
  f.tensors_.reserve(static_cast<size_t>(tensorCount));
  for (uint64_t i = 0; i < tensorCount; ++i) {
    p.context = str("tensor ", i);
    GgufTensorInfo t;
    t.name = std::string(p.string("tensor name"));
    p.context = str("tensor ", quoted(t.name));
    if (f.tensorIndex_.count(t.name)) p.fail("duplicate tensor name");
    t.nDims = p.u32("n_dims");
    if (t.nDims < 1 || t.nDims > kMaxDims) p.fail(str("n_dims is ", t.nDims, ", expected 1 to ", kMaxDims));
    t.ne.fill(1);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < t.nDims; ++d) {
      const uint64_t n = p.u64("dimension");
      if (n > kI64Max) p.fail(str("dimension ", d, " is ", n, ", larger than int64"));
      if (n != 0 && numel > kI64Max / n) {
        std::string dims;
        for (uint32_t k = 0; k <= d; ++k) dims += str(k ? " x " : "", k == d ? n : static_cast<uint64_t>(t.ne[k]));
        p.fail(str("element count of dims ", dims, " overflows int64"));
      }
      numel *= n;
      t.ne[d] = static_cast<int64_t>(n);
    }
    t.numel = static_cast<int64_t>(numel);
    t.type = p.u32("type");
    const GgmlType* type = ggmlType(t.type);
    if (!type) p.fail(str("unknown ggml type ", t.type));
    t.offset = p.u64("offset");
    if (t.ne[0] % type->blockElements != 0)
      p.fail(str("row length (dims[0]) ", t.ne[0], " is not a multiple of the ", type->name, " block size ",
                 type->blockElements));
    // bytes = rows * blocks per row * block bytes, each step checked.
    const uint64_t rowBlocks = static_cast<uint64_t>(t.ne[0]) / type->blockElements;
    const uint64_t rows = t.ne[0] == 0 ? 0 : numel / static_cast<uint64_t>(t.ne[0]);
    if (rowBlocks > kI64Max / type->blockBytes ||
        (rows != 0 && rowBlocks * type->blockBytes > kI64Max / rows))
      p.fail(str("byte size of ", numel, " ", type->name, " elements overflows int64"));
    t.bytes = rows * (rowBlocks * type->blockBytes);
    f.tensorIndex_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment (the file may end before it only
  // when no tensor has bytes).
  p.context.clear();
  const uint64_t end = p.pos;
  const uint64_t rem = end % f.alignment_;
  f.dataOffset_ = rem == 0 ? end : end + (f.alignment_ - rem);  // end <= SIZE_MAX, alignment < 2^32
  f.dataSize_ = f.dataOffset_ < size ? size - f.dataOffset_ : 0;
  for (GgufTensorInfo& t : f.tensors_) {
    p.context = str("tensor ", quoted(t.name));
    if (t.offset % f.alignment_ != 0)
      p.fail(str("data offset ", t.offset, " is not a multiple of the alignment ", f.alignment_));
    if (t.offset > f.dataSize_ || t.bytes > f.dataSize_ - t.offset)
      p.fail(str("data [", t.offset, ", ", t.offset, " + ", t.bytes, ") lies outside the data section of ",
                 f.dataSize_, " bytes (starting at file offset ", f.dataOffset_, "; file truncated?)"));
    // (A tensor without bytes may sit at the end of a data section that starts past the file end.)
    t.data = data + std::min<uint64_t>(f.dataOffset_ + t.offset, size);
  }
  return f;
}

GgufFile GgufFile::open(const std::string& path) {
  MappedFile mapped(path);
  GgufFile f = parse(mapped.data(), mapped.size(), path);
  f.file_ = std::move(mapped);  // the mapping itself does not move: pointers into it stay valid
  return f;
}

// ---- metadata access ----------------------------------------------------------------------------

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = keyIndex_.find(key);
  return it == keyIndex_.end() ? nullptr : &metadata_[it->second];
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const GgufValue* v = find(key);
  MOE_CHECK(v != nullptr, name_, ": no metadata key ", quoted(key));
  return *v;
}

const GgufValue& GgufFile::typed(const std::string& key, GgufType type) const {
  const GgufValue& v = get(key);
  MOE_CHECK(v.type() == type, name_, ": metadata key ", quoted(key), " is ", v.typeName(), ", expected ",
            ggufTypeName(type));
  return v;
}

const GgufValue& GgufFile::typedArray(const std::string& key, GgufType elementType) const {
  const GgufValue& v = get(key);
  MOE_CHECK(v.isArray() && v.elementType() == elementType, name_, ": metadata key ", quoted(key), " is ",
            v.typeName(), ", expected array of ", ggufTypeName(elementType));
  return v;
}

uint8_t GgufFile::getU8(const std::string& key) const {
  return static_cast<uint8_t>(typed(key, GgufType::Uint8).uintAt(0));
}
int8_t GgufFile::getI8(const std::string& key) const {
  return static_cast<int8_t>(typed(key, GgufType::Int8).intAt(0));
}
uint16_t GgufFile::getU16(const std::string& key) const {
  return static_cast<uint16_t>(typed(key, GgufType::Uint16).uintAt(0));
}
int16_t GgufFile::getI16(const std::string& key) const {
  return static_cast<int16_t>(typed(key, GgufType::Int16).intAt(0));
}
uint32_t GgufFile::getU32(const std::string& key) const {
  return static_cast<uint32_t>(typed(key, GgufType::Uint32).uintAt(0));
}
int32_t GgufFile::getI32(const std::string& key) const {
  return static_cast<int32_t>(typed(key, GgufType::Int32).intAt(0));
}
uint64_t GgufFile::getU64(const std::string& key) const { return typed(key, GgufType::Uint64).uintAt(0); }
int64_t GgufFile::getI64(const std::string& key) const { return typed(key, GgufType::Int64).intAt(0); }
float GgufFile::getF32(const std::string& key) const {
  return static_cast<float>(typed(key, GgufType::Float32).floatAt(0));
}
double GgufFile::getF64(const std::string& key) const { return typed(key, GgufType::Float64).floatAt(0); }
bool GgufFile::getBool(const std::string& key) const { return typed(key, GgufType::Bool).boolAt(0); }
std::string GgufFile::getString(const std::string& key) const {
  return std::string(typed(key, GgufType::String).stringAt(0));
}

int64_t GgufFile::getInt(const std::string& key) const {
  const GgufValue& v = get(key);
  MOE_CHECK(!v.isArray() && isInteger(v.type()), name_, ": metadata key ", quoted(key), " is ", v.typeName(),
            ", expected an integer");
  try {
    return v.intAt(0);
  } catch (const Error& e) {
    MOE_THROW(name_, ": ", e.what());
  }
}

const std::vector<std::string_view>& GgufFile::getStringArray(const std::string& key) const {
  return typedArray(key, GgufType::String).strings();
}

std::vector<float> GgufFile::getF32Array(const std::string& key) const {
  const GgufValue& v = typedArray(key, GgufType::Float32);
  std::vector<float> out(static_cast<size_t>(v.count()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(v.floatAt(i));
  return out;
}

std::vector<int32_t> GgufFile::getI32Array(const std::string& key) const {
  const GgufValue& v = typedArray(key, GgufType::Int32);
  std::vector<int32_t> out(static_cast<size_t>(v.count()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(v.intAt(i));
  return out;
}

std::vector<uint32_t> GgufFile::getU32Array(const std::string& key) const {
  const GgufValue& v = typedArray(key, GgufType::Uint32);
  std::vector<uint32_t> out(static_cast<size_t>(v.count()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint32_t>(v.uintAt(i));
  return out;
}

std::vector<bool> GgufFile::getBoolArray(const std::string& key) const {
  const GgufValue& v = typedArray(key, GgufType::Bool);
  std::vector<bool> out(static_cast<size_t>(v.count()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = v.boolAt(i);
  return out;
}

std::vector<int64_t> GgufFile::getIntArray(const std::string& key) const {
  const GgufValue& v = get(key);
  MOE_CHECK(v.isArray() && isInteger(v.elementType()), name_, ": metadata key ", quoted(key), " is ",
            v.typeName(), ", expected an array of integers");
  std::vector<int64_t> out(static_cast<size_t>(v.count()));
  try {
    for (size_t i = 0; i < out.size(); ++i) out[i] = v.intAt(i);
  } catch (const Error& e) {
    MOE_THROW(name_, ": ", e.what());
  }
  return out;
}

const GgufTensorInfo* GgufFile::findTensor(const std::string& tensorName) const {
  auto it = tensorIndex_.find(tensorName);
  return it == tensorIndex_.end() ? nullptr : &tensors_[it->second];
}

// ---- GgufWeights --------------------------------------------------------------------------------

GgufWeights::GgufWeights(const std::string& path) : GgufWeights(GgufFile::open(path)) {}

GgufWeights::GgufWeights(GgufFile file) : file_(std::move(file)) {
  const std::vector<GgufTensorInfo>& tensors = file_.tensors();
  entries_.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& t = tensors[i];
    Entry e{i, {}};
    const GgmlType* type = ggmlType(t.type);
    if (type->supported) e.meta = TensorMeta{t.name, type->storage, t.shape(), file_.name()};
    entries_.emplace(t.name, std::move(e));
  }
}

std::vector<std::string> GgufWeights::names() const {
  std::vector<std::string> out;
  out.reserve(file_.tensors().size());
  for (const GgufTensorInfo& t : file_.tensors()) out.push_back(t.name);
  return out;
}

bool GgufWeights::has(const std::string& name) const { return entries_.count(name) != 0; }

const GgufWeights::Entry& GgufWeights::entry(const std::string& name) const {
  auto it = entries_.find(name);
  MOE_CHECK(it != entries_.end(), file_.name(), ": no tensor ", quoted(name));
  const GgufTensorInfo& t = file_.tensors()[it->second.index];
  const GgmlType* type = ggmlType(t.type);
  MOE_CHECK(type->supported, file_.name(), ": tensor ", quoted(name), " has type ", type->name,
            ", which moe-dist cannot dequantize (supported: ", supportedTypeList(), ")");
  return it->second;
}

const TensorMeta& GgufWeights::meta(const std::string& name) const { return entry(name).meta; }

void GgufWeights::readF32(const std::string& name, float* out) const {
  const Entry& e = entry(name);
  const GgufTensorInfo& t = file_.tensors()[e.index];
  dequantize(e.meta.type, t.data, out, t.numel);
}

void GgufWeights::release(const std::string& name) const {
  if (!file_.mapped()) return;  // a caller's memory: never madvise it
  const GgufTensorInfo& t = file_.tensors()[entry(name).index];
  dropMappedPages(t.data, t.bytes);
}

const void* GgufWeights::rawData(const std::string& name) const {
  const Entry& e = entry(name);
  const StorageType s = e.meta.type;
  if (s == StorageType::F32 || s == StorageType::F16 || s == StorageType::BF16)
    return file_.tensors()[e.index].data;
  return nullptr;
}

std::unique_ptr<WeightSource> openGguf(const std::string& path) { return std::make_unique<GgufWeights>(path); }

}  // namespace moe
