// The GGUF reader: the committed fixtures (written by the `gguf` Python package, see
// tests/fixtures/make_gguf_fixtures.py) round-trip metadata of every value type and dequantize
// every tensor bit-exactly (0 ulp: ggml's reference formulas in float32, the same products in the
// same order as gguf.quants; NaN payloads compared as bits); malformed files built here byte by
// byte fail with a clear moe::Error, never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "worker/dequantize.h"
#include "worker/gguf.h"

using moe::GgufFile;
using moe::GgufType;
using moe::GgufWeights;
using nlohmann::json;

namespace {

const std::string kFixtures = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/gguf/";

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

json readJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return json::parse(in);
}

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "";
}

GgufFile parseBytes(const std::vector<uint8_t>& b, const std::string& name = "test.gguf") {
  return GgufFile::parse(b.data(), b.size(), name);
}
std::string parseError(const std::vector<uint8_t>& b) {
  return errorOf([&] { parseBytes(b); });
}

#define EXPECT_CONTAINS(haystack, needle)                                               \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                     \
      << "expected \"" << (needle) << "\" in: \"" << (haystack) << "\""

// ---- a minimal GGUF writer for malformed inputs ------------------------------------------------

struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u8(uint8_t v) { b.push_back(v); return *this; }
  Bytes& u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  Bytes& u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  Bytes& str(const std::string& s) { u64(s.size()); b.insert(b.end(), s.begin(), s.end()); return *this; }
  Bytes& raw(const std::vector<uint8_t>& v) { b.insert(b.end(), v.begin(), v.end()); return *this; }
};

std::vector<uint8_t> kvU32(const std::string& key, uint32_t v) { return Bytes().str(key).u32(4).u32(v).b; }
std::vector<uint8_t> kvString(const std::string& key, const std::string& v) {
  return Bytes().str(key).u32(8).str(v).b;
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first
  uint32_t type = 0;         // F32
  uint64_t offset = 0;
};

struct FileSpec {
  uint32_t version = 3;
  std::vector<std::vector<uint8_t>> kvs;
  std::vector<TensorSpec> tensors;
  uint32_t padTo = 32;
  size_t dataBytes = 0;
  int64_t tensorCount = -1;  // -1: the real count
  int64_t kvCount = -1;
};

std::vector<uint8_t> build(const FileSpec& s) {
  Bytes out;
  out.raw({'G', 'G', 'U', 'F'}).u32(s.version);
  out.u64(s.tensorCount >= 0 ? static_cast<uint64_t>(s.tensorCount) : s.tensors.size());
  out.u64(s.kvCount >= 0 ? static_cast<uint64_t>(s.kvCount) : s.kvs.size());
  for (const auto& kv : s.kvs) out.raw(kv);
  for (const TensorSpec& t : s.tensors) {
    out.str(t.name).u32(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) out.u64(d);
    out.u32(t.type).u64(t.offset);
  }
  while (out.b.size() % s.padTo) out.u8(0);
  out.b.resize(out.b.size() + s.dataBytes, 0);
  return out.b;
}

// A valid file: two F32 tensors of 4 x 8 elements (128 bytes each) at offsets 0 and 128.
FileSpec validSpec() {
  FileSpec s;
  s.kvs = {kvString("general.architecture", "llama"), kvU32("llama.block_count", 2)};
  s.tensors = {{"a.weight", {8, 4}, 0, 0}, {"b.weight", {8, 4}, 0, 128}};
  s.dataBytes = 256;
  return s;
}

// ---- fixtures ------------------------------------------------------------------------------------

void checkMetadata(const GgufFile& f, const json& manifest) {
  const json& meta = manifest.at("metadata");
  ASSERT_EQ(f.metadata().size(), meta.size());
  for (size_t k = 0; k < meta.size(); ++k) {
    const json& m = meta[k];
    const std::string key = m.at("key");
    SCOPED_TRACE(key);
    const moe::GgufValue& v = f.metadata()[k];  // file order is kept
    EXPECT_EQ(v.key(), key);
    EXPECT_EQ(&f.get(key), &v);
    EXPECT_TRUE(f.has(key));
    EXPECT_EQ(moe::ggufTypeName(v.type()), m.at("type").get<std::string>());
    const bool array = v.isArray();
    if (array) {
      EXPECT_EQ(moe::ggufTypeName(v.elementType()), m.at("element_type").get<std::string>());
    }
    const json values = array ? m.at("value") : json::array({m.at("value")});
    ASSERT_EQ(v.count(), values.size());
    for (uint64_t i = 0; i < v.count(); ++i) {
      const json& want = values[i];
      switch (v.elementType()) {
        case GgufType::String: EXPECT_EQ(v.stringAt(i), want.get<std::string>()); break;
        case GgufType::Bool: EXPECT_EQ(v.boolAt(i), want.get<bool>()); break;
        case GgufType::Float32:
        case GgufType::Float64: EXPECT_EQ(v.floatAt(i), want.get<double>()); break;
        default:
          if (want.is_number_unsigned()) EXPECT_EQ(v.uintAt(i), want.get<uint64_t>()) << i;
          else EXPECT_EQ(v.intAt(i), want.get<int64_t>()) << i;
      }
    }
  }
}

// readF32 of every tensor equals the reference dequantization bit for bit; so does applying the
// block functions one block at a time.
void checkTensors(const GgufWeights& w, const json& manifest, const std::vector<uint8_t>& golden) {
  const json& tensors = manifest.at("tensors");
  ASSERT_EQ(w.names().size(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    const json& t = tensors[k];
    const std::string name = t.at("name");
    SCOPED_TRACE(name);
    EXPECT_EQ(w.names()[k], name);
    ASSERT_TRUE(w.has(name));
    const moe::TensorMeta& meta = w.meta(name);
    EXPECT_EQ(meta.name, name);
    EXPECT_EQ(moe::storageTypeName(meta.type), t.at("type").get<std::string>());
    EXPECT_EQ(meta.shape, t.at("shape").get<std::vector<int64_t>>());
    EXPECT_EQ(meta.file, w.origin());
    const int64_t count = t.at("count");
    ASSERT_EQ(moe::numel(meta.shape), count);
    const size_t at = t.at("golden_offset").get<size_t>() * 4;
    ASSERT_LE(at + count * 4, golden.size());

    std::vector<float> got(static_cast<size_t>(count));
    w.readF32(name, got.data());
    int shown = 0;
    for (int64_t i = 0; i < count; ++i) {
      uint32_t g, want;
      std::memcpy(&g, &got[i], 4);
      std::memcpy(&want, golden.data() + at + 4 * i, 4);
      if (g != want && shown++ < 5)
        ADD_FAILURE() << "element " << i << ": got " << got[i] << " (0x" << std::hex << g << "), reference 0x" << want
                      << std::dec;
    }

    const moe::GgufTensorInfo* info = w.gguf().findTensor(name);
    ASSERT_NE(info, nullptr);
    const moe::BlockFormat& f = moe::blockFormat(meta.type);
    EXPECT_EQ(static_cast<int64_t>(info->bytes), moe::storageBytes(meta.type, count));
    std::vector<float> blockwise(static_cast<size_t>(count));
    for (int64_t b = 0; b < count / f.elements; ++b)
      f.dequantize(info->data + b * f.bytes, blockwise.data() + b * f.elements);
    EXPECT_EQ(std::memcmp(blockwise.data(), golden.data() + at, count * 4), 0) << "block functions";

    const void* raw = w.rawData(name);
    const bool plain = meta.type == moe::StorageType::F32 || meta.type == moe::StorageType::F16 ||
                       meta.type == moe::StorageType::BF16;
    if (plain) {
      EXPECT_EQ(raw, static_cast<const void*>(info->data));
    } else {
      EXPECT_EQ(raw, nullptr);
    }
  }
}

}  // namespace

TEST(Gguf, FixtureV3MetadataRoundTrip) {
  GgufFile f = GgufFile::open(kFixtures + "types_v3.gguf");
  const json manifest = readJson(kFixtures + "types_v3.json");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.dataOffset() % 32, 0u);
  checkMetadata(f, manifest);

  // Typed getters on each scalar type.
  EXPECT_EQ(f.getU8("test.uint8"), 250);
  EXPECT_EQ(f.getI8("test.int8"), -120);
  EXPECT_EQ(f.getU16("test.uint16"), 65000);
  EXPECT_EQ(f.getI16("test.int16"), -32000);
  EXPECT_EQ(f.getU32("test.uint32"), 4000000000u);
  EXPECT_EQ(f.getI32("test.int32"), -2000000000);
  EXPECT_EQ(f.getU64("test.uint64"), 18446744073709551611ull);
  EXPECT_EQ(f.getI64("test.int64"), -4611686018427387911ll);
  EXPECT_EQ(f.getF32("test.float32"), 3.14159f);
  EXPECT_EQ(f.getF64("test.float64"), 2.718281828459045);
  EXPECT_TRUE(f.getBool("test.bool.true"));
  EXPECT_FALSE(f.getBool("test.bool.false"));
  EXPECT_EQ(f.getString("test.string"), "h\u00e9llo w\u00f6rld \u2713");
  EXPECT_EQ(f.getString("test.string.empty"), "");
  EXPECT_EQ(f.getInt("test.int8"), -120);
  EXPECT_EQ(f.getInt("test.uint32"), 4000000000);

  // The tokenizer keys, as a tokenizer builder reads them.
  EXPECT_EQ(f.getString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.getString("tokenizer.ggml.pre"), "smollm");
  const auto& tokens = f.getStringArray("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 6u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[5], "\u0120the");
  EXPECT_EQ(&f.getStringArray("tokenizer.ggml.tokens"), &tokens) << "string arrays are not copied";
  const char* mapped = tokens[0].data();
  EXPECT_EQ(f.getF32Array("tokenizer.ggml.scores"), (std::vector<float>{0, -1, -2, -3, -4.5f, -5.25f}));
  EXPECT_EQ(f.getI32Array("tokenizer.ggml.token_type"), (std::vector<int32_t>{3, 3, 1, 1, 1, 1}));
  EXPECT_EQ(f.getIntArray("tokenizer.ggml.token_type"), (std::vector<int64_t>{3, 3, 1, 1, 1, 1}));
  EXPECT_EQ(f.getStringArray("tokenizer.ggml.merges")[1], "\u0120 t");
  EXPECT_EQ(f.getU32("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(f.getU32("tokenizer.ggml.eos_token_id"), 0u);
  EXPECT_FALSE(f.getBool("tokenizer.ggml.add_bos_token"));
  EXPECT_TRUE(f.getBool("tokenizer.ggml.add_space_prefix"));
  EXPECT_EQ(f.getU32Array("test.array.uint32"), (std::vector<uint32_t>{0, 4294967295u, 7}));
  EXPECT_EQ(f.getBoolArray("test.array.bool"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.getIntArray("test.array.int64"), (std::vector<int64_t>{INT64_MIN, INT64_MAX}));

  // Moving the file keeps the views into the mapping valid.
  GgufFile moved = std::move(f);
  EXPECT_EQ(moved.getStringArray("tokenizer.ggml.tokens")[0].data(), mapped);
  EXPECT_EQ(moved.getStringArray("tokenizer.ggml.tokens")[0], "<|endoftext|>");
}

TEST(Gguf, GetterErrorsNameKeyAndTypes) {
  const GgufFile f = GgufFile::open(kFixtures + "types_v3.gguf");
  std::string e = errorOf([&] { f.getU32("tokenizer.ggml.model"); });
  EXPECT_CONTAINS(e, "types_v3.gguf");
  EXPECT_CONTAINS(e, "'tokenizer.ggml.model'");
  EXPECT_CONTAINS(e, "is string, expected uint32");
  e = errorOf([&] { f.getString("test.array.string"); });
  EXPECT_CONTAINS(e, "'test.array.string' is array of string, expected string");
  e = errorOf([&] { f.getF32Array("tokenizer.ggml.token_type"); });
  EXPECT_CONTAINS(e, "'tokenizer.ggml.token_type' is array of int32, expected array of float32");
  e = errorOf([&] { f.getStringArray("test.string"); });
  EXPECT_CONTAINS(e, "'test.string' is string, expected array of string");
  e = errorOf([&] { f.getI64("test.uint64"); });
  EXPECT_CONTAINS(e, "is uint64, expected int64");
  e = errorOf([&] { f.getInt("test.uint64"); });
  EXPECT_CONTAINS(e, "18446744073709551611 does not fit in int64");
  e = errorOf([&] { f.getInt("test.float32"); });
  EXPECT_CONTAINS(e, "'test.float32' is float32, expected an integer");
  e = errorOf([&] { f.getIntArray("test.array.float64"); });
  EXPECT_CONTAINS(e, "is array of float64, expected an array of integers");
  e = errorOf([&] { f.getBool("no.such.key"); });
  EXPECT_CONTAINS(e, "types_v3.gguf: no metadata key 'no.such.key'");
  EXPECT_FALSE(f.has("no.such.key"));
  EXPECT_EQ(f.find("no.such.key"), nullptr);
  e = errorOf([&] { f.get("test.array.int8").stringAt(0); });
  EXPECT_CONTAINS(e, "'test.array.int8' is array of int8, not a string");
  e = errorOf([&] { f.get("test.array.int8").intAt(3); });
  EXPECT_CONTAINS(e, "element 3 requested, the value has 3");
  e = errorOf([&] { f.get("test.array.int8").uintAt(0); });
  EXPECT_CONTAINS(e, "-128 is negative");
}

TEST(Gguf, FixtureV3TensorsMatchReference) {
  const GgufWeights w(kFixtures + "types_v3.gguf");
  checkTensors(w, readJson(kFixtures + "types_v3.json"), readFile(kFixtures + "types_v3.golden.f32"));
  // Every supported type is present in the fixture.
  std::set<std::string> types;
  for (const auto& name : w.names()) types.insert(moe::storageTypeName(w.meta(name).type));
  EXPECT_EQ(types.size(), 11u);
  // GGUF dims are innermost first; the meta shape is their reverse.
  const moe::GgufTensorInfo* f16 = w.gguf().findTensor("f16");
  ASSERT_NE(f16, nullptr);
  EXPECT_EQ(f16->nDims, 4u);
  EXPECT_EQ(f16->ne, (std::array<int64_t, 4>{8, 3, 2, 2}));
  EXPECT_EQ(w.meta("f16").shape, (std::vector<int64_t>{2, 2, 3, 8}));
}

TEST(Gguf, FixtureV2WithAlignment64) {
  std::unique_ptr<moe::WeightSource> ws = moe::openGguf(kFixtures + "small_v2.gguf");
  const auto& w = dynamic_cast<const GgufWeights&>(*ws);
  EXPECT_EQ(w.gguf().version(), 2u);
  EXPECT_EQ(w.gguf().alignment(), 64u);
  EXPECT_EQ(w.gguf().dataOffset() % 64, 0u);
  for (const auto& t : w.gguf().tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  const json manifest = readJson(kFixtures + "small_v2.json");
  EXPECT_EQ(manifest.at("version"), 2);
  checkMetadata(w.gguf(), manifest);
  checkTensors(w, manifest, readFile(kFixtures + "small_v2.golden.f32"));
  EXPECT_EQ(ws->origin(), kFixtures + "small_v2.gguf");
}

TEST(Gguf, MissingTensorAndFile) {
  const GgufWeights w(kFixtures + "small_v2.gguf");
  std::string e = errorOf([&] { w.meta("nope.weight"); });
  EXPECT_CONTAINS(e, "small_v2.gguf: no tensor 'nope.weight'");
  EXPECT_FALSE(w.has("nope.weight"));
  EXPECT_THROW(w.rawData("nope.weight"), moe::Error);
  e = errorOf([&] { moe::openGguf("/nonexistent/model.gguf"); });
  EXPECT_CONTAINS(e, "/nonexistent/model.gguf");
}

TEST(Gguf, TruncatedAtEveryCutPoint) {
  const std::vector<uint8_t> full = readFile(kFixtures + "types_v3.gguf");
  const GgufFile f = parseBytes(full);
  uint64_t lastByte = 0;  // one past the last tensor byte; the padding after it is optional
  for (const auto& t : f.tensors()) lastByte = std::max(lastByte, f.dataOffset() + t.offset + t.bytes);
  ASSERT_LE(lastByte, full.size());
  size_t failures = 0;
  for (size_t cut = 0; cut < full.size(); ++cut) {
    std::vector<uint8_t> part(full.begin(), full.begin() + cut);
    const std::string e = parseError(part);
    if (cut < lastByte) {
      EXPECT_FALSE(e.empty()) << "a file cut at " << cut << " of " << full.size() << " bytes parsed";
      if (!e.empty()) ++failures;
      if (cut == 0 || cut == 10 || cut == 100 || cut == lastByte - 1) {
        EXPECT_CONTAINS(e, "test.gguf: ");
      }
    } else {
      EXPECT_TRUE(e.empty()) << "cut at " << cut << ": " << e;
    }
  }
  EXPECT_EQ(failures, lastByte);
  EXPECT_CONTAINS(parseError(std::vector<uint8_t>(full.begin(), full.begin() + 2)), "truncated: magic");
  // A cut inside the metadata names the key being read.
  const std::vector<uint8_t> built = build(validSpec());
  const size_t keyAt = 24 + 8 + std::string("general.architecture").size() + 4 + 8 + 2;
  EXPECT_CONTAINS(parseError(std::vector<uint8_t>(built.begin(), built.begin() + keyAt)),
                  "metadata key 'general.architecture': string has length 5 but only 2 bytes remain");
  EXPECT_CONTAINS(parseError(std::vector<uint8_t>(full.begin(), full.begin() + lastByte - 1)),
                  "outside the data section");
}

TEST(Gguf, BuiltFileIsValid) {
  const std::vector<uint8_t> b = build(validSpec());
  const GgufFile f = parseBytes(b);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[1].shape(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(f.tensors()[1].data, b.data() + f.dataOffset() + 128);
  EXPECT_EQ(f.getU32("llama.block_count"), 2u);
}

TEST(Gguf, HeaderErrors) {
  std::vector<uint8_t> b = build(validSpec());
  b[0] = 'X';
  EXPECT_CONTAINS(parseError(b), "test.gguf: not a GGUF file");
  EXPECT_CONTAINS(parseError({}), "truncated: magic");

  FileSpec s = validSpec();
  s.version = 1;
  EXPECT_CONTAINS(parseError(build(s)), "GGUF version 1 is not supported");
  s.version = 4;
  EXPECT_CONTAINS(parseError(build(s)), "unsupported GGUF version 4 (expected 2 or 3)");
  s.version = 0x03000000;  // a big-endian v3 file read as little-endian
  EXPECT_CONTAINS(parseError(build(s)), "big-endian GGUF");
  s.version = 2;
  EXPECT_EQ(parseError(build(s)), "");

  s = validSpec();
  s.kvCount = int64_t{1} << 60;
  EXPECT_CONTAINS(parseError(build(s)), "metadata count 1152921504606846976 cannot fit");
  s = validSpec();
  s.tensorCount = INT64_MAX;
  EXPECT_CONTAINS(parseError(build(s)), "tensor count 9223372036854775807 cannot fit");
  s = validSpec();
  s.tensorCount = 3;  // the data section is then read as a third tensor info
  EXPECT_FALSE(parseError(build(s)).empty());
}

TEST(Gguf, MetadataErrors) {
  FileSpec s = validSpec();
  s.kvs.push_back(kvU32("llama.block_count", 3));
  EXPECT_CONTAINS(parseError(build(s)), "metadata key 'llama.block_count': duplicate key");

  s = validSpec();  // a key length far beyond the file
  s.kvs.insert(s.kvs.begin(), Bytes().u64(uint64_t{1} << 62).b);
  EXPECT_CONTAINS(parseError(build(s)), "metadata entry 0: key has length 4611686018427387904 but only");

  s = validSpec();  // a string value longer than the file
  s.kvs.insert(s.kvs.begin(), Bytes().str("general.name").u32(8).u64(1000000).b);
  EXPECT_CONTAINS(parseError(build(s)), "metadata key 'general.name': string has length 1000000 but only");

  s = validSpec();
  s.kvs.insert(s.kvs.begin(), Bytes().str("x.type").u32(13).u32(0).b);
  EXPECT_CONTAINS(parseError(build(s)), "metadata key 'x.type': unknown value type 13");

  s = validSpec();
  s.kvs.insert(s.kvs.begin(), Bytes().str("x.nested").u32(9).u32(9).u64(1).u32(4).u64(1).u32(7).b);
  EXPECT_CONTAINS(parseError(build(s)), "metadata key 'x.nested': arrays of arrays are not supported");

  s = validSpec();
  s.kvs.insert(s.kvs.begin(), Bytes().str("x.big").u32(9).u32(10).u64(uint64_t{1} << 61).b);
  EXPECT_CONTAINS(parseError(build(s)), "metadata key 'x.big': 2305843009213693952 elements of uint64");

  s = validSpec();
  s.kvs.insert(s.kvs.begin(), Bytes().str("x.strings").u32(9).u32(8).u64(uint64_t{1} << 40).b);
  EXPECT_CONTAINS(parseError(build(s)), "metadata key 'x.strings': array of 1099511627776 strings cannot fit");

  s = validSpec();
  s.kvs.insert(s.kvs.begin(), Bytes().str("x.bool").u32(7).u8(2).b);
  EXPECT_CONTAINS(parseError(build(s)), "metadata key 'x.bool': bool element 0 has byte value 2");

  s = validSpec();  // empty arrays are valid
  s.kvs.insert(s.kvs.begin(), Bytes().str("x.empty").u32(9).u32(4).u64(0).b);
  const std::vector<uint8_t> b = build(s);
  EXPECT_TRUE(parseBytes(b).getU32Array("x.empty").empty());

  s = validSpec();
  s.kvs.push_back(kvU32("general.alignment", 48));
  EXPECT_CONTAINS(parseError(build(s)), "'general.alignment': alignment 48 is not a power of two");
  s = validSpec();
  s.kvs.push_back(kvU32("general.alignment", 0));
  EXPECT_CONTAINS(parseError(build(s)), "alignment 0 is not a power of two");
  s = validSpec();
  s.kvs.push_back(kvString("general.alignment", "32"));
  EXPECT_CONTAINS(parseError(build(s)), "'general.alignment': is string, expected uint32");
  s = validSpec();
  s.kvs.push_back(kvU32("general.alignment", 256));
  s.padTo = 256;
  const std::vector<uint8_t> aligned = build(s);
  EXPECT_CONTAINS(parseError(aligned), "'b.weight': data offset 128 is not a multiple of the alignment 256");
  s.tensors[1].offset = 256;
  s.dataBytes = 256 + 128;
  const std::vector<uint8_t> b256 = build(s);
  const GgufFile f = parseBytes(b256);
  EXPECT_EQ(f.alignment(), 256u);
  EXPECT_EQ(f.dataOffset() % 256, 0u);
}

TEST(Gguf, TensorInfoErrors) {
  FileSpec s = validSpec();
  s.tensors[1].name = "a.weight";
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'a.weight': duplicate tensor name");

  s = validSpec();
  s.tensors[1].offset = 160;  // aligned, but its 128 bytes end past the 256-byte data section
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'b.weight': data [160, 160 + 128) lies outside the data section of 256 bytes");
  s.tensors[1].offset = UINT64_MAX - 31;  // aligned; offset + bytes would wrap
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'b.weight': data [18446744073709551584");
  s.tensors[1].offset = 100;
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'b.weight': data offset 100 is not a multiple of the alignment 32");

  s = validSpec();
  s.tensors[0].type = 99;
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'a.weight': unknown ggml type 99");
  s.tensors[0].type = 4;  // Q4_2, removed from ggml
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'a.weight': unknown ggml type 4");

  s = validSpec();
  s.tensors[0].ne = {8, 4, 1, 1, 1};
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'a.weight': n_dims is 5, expected 1 to 4");
  s.tensors[0].ne = {};
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'a.weight': n_dims is 0");

  s = validSpec();
  s.tensors[0].ne = {uint64_t{1} << 32, uint64_t{1} << 32};
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'a.weight': element count of dims 4294967296 x 4294967296 overflows");
  s.tensors[0].ne = {UINT64_MAX};
  EXPECT_CONTAINS(parseError(build(s)), "dimension 0 is 18446744073709551615, larger than int64");
  s.tensors[0].ne = {uint64_t{1} << 62, 1};  // elements fit in int64, F32 bytes do not
  EXPECT_CONTAINS(parseError(build(s)), "tensor 'a.weight': byte size of 4611686018427387904 F32 elements overflows");

  s = validSpec();
  s.tensors[0].type = 12;  // Q4_K: rows of 8 elements are not whole 256-element blocks
  EXPECT_CONTAINS(parseError(build(s)),
                  "tensor 'a.weight': row length (dims[0]) 8 is not a multiple of the Q4_K block size 256");

  s = validSpec();  // a tensor with no elements is valid
  s.tensors.push_back({"empty", {0, 3}, 0, 256});
  const std::vector<uint8_t> b = build(s);
  EXPECT_EQ(parseBytes(b).findTensor("empty")->bytes, 0u);
}

TEST(Gguf, UnsupportedTypeNamedWhenRead) {
  FileSpec s = validSpec();
  s.tensors[0] = {"blk.0.attn_q.weight", {256, 1}, 17, 0};  // IQ2_XS: 74 bytes per 256 elements
  const std::vector<uint8_t> b = build(s);
  const GgufWeights w(parseBytes(b, "model.gguf"));
  EXPECT_TRUE(w.has("blk.0.attn_q.weight"));
  EXPECT_EQ(w.gguf().findTensor("blk.0.attn_q.weight")->bytes, 74u);
  std::vector<float> out(256);
  for (const std::string& e : {errorOf([&] { w.meta("blk.0.attn_q.weight"); }),
                               errorOf([&] { w.readF32("blk.0.attn_q.weight", out.data()); }),
                               errorOf([&] { w.rawData("blk.0.attn_q.weight"); })}) {
    EXPECT_CONTAINS(e, "model.gguf: tensor 'blk.0.attn_q.weight' has type IQ2_XS");
    EXPECT_CONTAINS(e, "cannot dequantize");
  }
  // The other tensor is still readable.
  EXPECT_EQ(w.meta("b.weight").shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(moe::ggmlTypeName(17), "IQ2_XS");
  EXPECT_EQ(moe::ggmlTypeName(1000), "unknown type 1000");
}
