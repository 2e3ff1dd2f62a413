// Safetensors reader: fp16/bf16 conversion, MappedFile, every header check of SafetensorsFile
// (on files the tests write themselves), sharded folders, and a golden cross-check against files
// written by the Python `safetensors` package (tests/fixtures/make_safetensors_fixtures.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "worker/half.h"
#include "worker/mapped_file.h"
#include "worker/safetensors.h"

namespace fs = std::filesystem;
using moe::SafetensorsFile;
using moe::SafetensorsWeights;

namespace {

uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float fromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    static int counter = 0;  // TempDirs may nest (expectFileError inside a test that has one)
    path_ = fs::temp_directory_path() / ("moe_st_" + std::string(info->name()) + "_" +
                                         std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// The 8-byte little-endian length, the header, `pad` trailing spaces, the data section.
std::string stBytes(const std::string& header, const std::string& data = "", size_t pad = 0,
                    std::optional<uint64_t> lengthOverride = std::nullopt) {
  const uint64_t n = lengthOverride ? *lengthOverride : header.size() + pad;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(pad, ' ') + data;
}

std::string f32Bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  size_t i = 0;
  for (float f : v) std::memcpy(&s[4 * i++], &f, 4);
  return s;
}
std::string u16Bytes(std::initializer_list<uint16_t> v) {
  std::string s(v.size() * 2, '\0');
  size_t i = 0;
  for (uint16_t h : v) std::memcpy(&s[2 * i++], &h, 2);
  return s;
}

// Runs `f`, expecting moe::Error whose message contains every one of `parts`.
void expectError(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const moe::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks \"" << p << "\": " << msg;
    return;
  }
  ADD_FAILURE() << "expected moe::Error";
}

// Writes header + data to a file and expects opening it to fail with a message naming the file
// and containing `parts`; also through openSafetensors, which must report the same.
void expectFileError(const std::string& header, const std::string& data,
                     std::initializer_list<std::string> parts,
                     std::optional<uint64_t> lengthOverride = std::nullopt) {
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  writeBytes(path, stBytes(header, data, 0, lengthOverride));
  std::vector<std::string> all(parts);
  all.push_back(path);
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "expected moe::Error for header " << header;
  } catch (const moe::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : all)
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks \"" << p << "\": " << msg;
  }
  EXPECT_THROW(moe::openSafetensors(path), moe::Error);
}

const std::string kFixtures = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/safetensors";

}  // namespace

// ---- fp16 / bf16 -------------------------------------------------------------------------------

// Every fp16 bit pattern against a reference built from the definition with ldexp.
TEST(Half, AllFp16ValuesMatchTheDefinition) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    const float got = moe::halfToFloat(static_cast<uint16_t>(h));
    if (exp == 0x1f && mant != 0) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      ASSERT_EQ(std::signbit(got), sign == 1) << std::hex << h;
      ASSERT_EQ(bitsOf(got) & 0x7fffffu, static_cast<uint32_t>(mant) << 13) << std::hex << h;
      continue;
    }
    double ref = exp == 0x1f ? INFINITY
                 : exp == 0  ? std::ldexp(static_cast<double>(mant), -24)
                             : std::ldexp(1.0 + mant / 1024.0, exp - 15);
    if (sign) ref = -ref;
    ASSERT_EQ(bitsOf(got), bitsOf(static_cast<float>(ref))) << "fp16 0x" << std::hex << h;
  }
}

TEST(Half, Fp16SpecialValues) {
  EXPECT_EQ(bitsOf(moe::halfToFloat(0x0000)), 0x00000000u);
  EXPECT_EQ(bitsOf(moe::halfToFloat(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(moe::halfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(moe::halfToFloat(0xc000), -2.0f);
  EXPECT_EQ(moe::halfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(moe::halfToFloat(0x0400), std::ldexp(1.0f, -14));        // smallest normal
  EXPECT_EQ(moe::halfToFloat(0x0001), std::ldexp(1.0f, -24));        // smallest subnormal
  EXPECT_EQ(moe::halfToFloat(0x03ff), std::ldexp(1023.0f, -24));     // largest subnormal
  EXPECT_EQ(moe::halfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(moe::halfToFloat(0x7c00), INFINITY);
  EXPECT_EQ(moe::halfToFloat(0xfc00), -INFINITY);
  EXPECT_EQ(bitsOf(moe::halfToFloat(0x7e00)), 0x7fc00000u);  // quiet NaN
  EXPECT_EQ(bitsOf(moe::halfToFloat(0x7c01)), 0x7f802000u);  // signalling NaN keeps its payload
  EXPECT_EQ(bitsOf(moe::halfToFloat(0xfe00)), 0xffc00000u);
}

TEST(Half, Bf16SpecialValues) {
  EXPECT_EQ(moe::bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(moe::bf16ToFloat(0xbfc0), -1.5f);
  EXPECT_EQ(bitsOf(moe::bf16ToFloat(0x8000)), 0x80000000u);
  EXPECT_EQ(moe::bf16ToFloat(0x7f80), INFINITY);
  EXPECT_EQ(moe::bf16ToFloat(0xff80), -INFINITY);
  EXPECT_TRUE(std::isnan(moe::bf16ToFloat(0x7fc0)));
  EXPECT_TRUE(std::isnan(moe::bf16ToFloat(0x7f81)));
  EXPECT_EQ(moe::bf16ToFloat(0x0001), fromBits(0x00010000u));  // subnormal
  EXPECT_EQ(moe::bf16ToFloat(0x7f7f), fromBits(0x7f7f0000u));  // largest finite
  EXPECT_EQ(moe::bf16ToFloat(0x0080), std::ldexp(1.0f, -126));
}

TEST(Half, ArraysFromUnalignedMemory) {
  const std::string h = "x" + u16Bytes({0x3c00, 0xc000, 0x0001, 0x7c00});
  const std::string b = "x" + u16Bytes({0x3f80, 0xbfc0, 0x0001, 0xff80});
  float out[4];
  moe::halfToFloat(h.data() + 1, out, 4);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(out[3], INFINITY);
  moe::bf16ToFloat(b.data() + 1, out, 4);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -1.5f);
  EXPECT_EQ(out[2], fromBits(0x00010000u));
  EXPECT_EQ(out[3], -INFINITY);
}

// ---- MappedFile --------------------------------------------------------------------------------

TEST(MappedFile, MapsContentsAndMoves) {
  TempDir dir;
  writeBytes(dir / "a.bin", "hello");
  moe::MappedFile a(dir / "a.bin");
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a.data()), a.size()), "hello");
  EXPECT_EQ(a.path(), dir / "a.bin");
  const uint8_t* p = a.data();
  moe::MappedFile b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.size(), 0u);
  writeBytes(dir / "c.bin", "xy");
  moe::MappedFile c(dir / "c.bin");
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), 5u);
}

TEST(MappedFile, EmptyFileHasSizeZero) {
  TempDir dir;
  writeBytes(dir / "empty", "");
  moe::MappedFile f(dir / "empty");
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(f.data(), nullptr);
}

TEST(MappedFile, ErrorsNameThePath) {
  TempDir dir;
  expectError([&] { moe::MappedFile f(dir / "missing.bin"); },
              {dir / "missing.bin", "No such file"});
  expectError([&] { moe::MappedFile f(dir.str()); }, {dir.str(), "not a regular file"});
}

// ---- SafetensorsFile: valid files --------------------------------------------------------------

TEST(SafetensorsFile, ParsesTensorsMetadataAndPadding) {
  const std::string header =
      R"({"b":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},)"
      R"("__metadata__":{"format":"pt","note":"x"},)"
      R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"extra":{"ignored":[1]}},)"
      R"("s":{"dtype":"BF16","shape":[],"data_offsets":[30,32]},)"
      R"("z":{"dtype":"I64","shape":[0,5],"data_offsets":[32,32]}})";
  const std::string data = f32Bytes({1, 2, 3, 4, 5, 6}) + u16Bytes({0x3c00, 0x4000}) +
                           std::string(2, '\0') /* a gap */ + u16Bytes({0x3f80}) + "tail";
  const std::string bytes = stBytes(header, data, /*pad=*/5);
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  SafetensorsFile f = SafetensorsFile::parse(base, bytes.size(), "mem.safetensors");
  EXPECT_EQ(f.name(), "mem.safetensors");
  EXPECT_EQ(f.headerSize(), header.size() + 5);
  EXPECT_EQ(f.dataSize(), data.size());
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.tensors()[3].name, "z");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().size(), 2u);
  const moe::SafetensorsTensor* a = f.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, moe::SafetensorsDtype::F32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->numel, 6);
  EXPECT_EQ(a->data, base + 8 + header.size() + 5);
  const moe::SafetensorsTensor* s = f.find("s");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->numel, 1);
  EXPECT_EQ(f.find("z")->numel, 0);
  EXPECT_EQ(f.find("__metadata__"), nullptr);
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(SafetensorsFile, EveryDtypeParsesWithItsSize) {
  const std::vector<std::pair<std::string, size_t>> dtypes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1},
      {"F8_E5M2", 1}};
  for (const auto& [name, size] : dtypes) {
    const std::string header = R"({"t":{"dtype":")" + name + R"(","shape":[3],"data_offsets":[0,)" +
                               std::to_string(3 * size) + "]}}";
    const std::string bytes = stBytes(header, std::string(3 * size, '\1'));
    SafetensorsFile f = SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               bytes.size(), "x");
    ASSERT_EQ(f.tensors().size(), 1u) << name;
    EXPECT_EQ(moe::safetensorsDtypeName(f.tensors()[0].dtype), name);
    EXPECT_EQ(moe::safetensorsDtypeSize(f.tensors()[0].dtype), size);
  }
}

TEST(SafetensorsFile, EmptyHeaderObjectHasNoTensors) {
  const std::string bytes = stBytes("{}  ");
  SafetensorsFile f =
      SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x");
  EXPECT_TRUE(f.tensors().empty());
}

// ---- SafetensorsFile: every check, on files ----------------------------------------------------

TEST(SafetensorsFile, TruncatedFile) {
  TempDir dir;
  writeBytes(dir / "short.safetensors", std::string("\x05\0\0\0\0", 5));
  expectError([&] { SafetensorsFile::open(dir / "short.safetensors"); },
              {dir / "short.safetensors", "5 bytes", "8-byte header length"});
  writeBytes(dir / "empty.safetensors", "");
  expectError([&] { SafetensorsFile::open(dir / "empty.safetensors"); },
              {dir / "empty.safetensors", "0 bytes"});
}

TEST(SafetensorsFile, HeaderLengthBeyondFile) {
  expectFileError("{}", "", {"header length 100", "beyond the end of the file", "2 bytes follow"},
                  100);
  expectFileError("{}", "", {"header length 209715200", "exceeds the limit of 104857600"},
                  uint64_t{200} << 20);
  expectFileError("{}", "", {"header length 18446744073709551615", "exceeds the limit"},
                  ~uint64_t{0});
}

TEST(SafetensorsFile, HeaderNotJsonOrNotObject) {
  expectFileError("{\"a\": ", "", {"header is not valid JSON"});
  expectFileError("", "", {"header is not valid JSON"});
  expectFileError("{} x", "", {"header is not valid JSON"});
  expectFileError(std::string("{}\0\0", 4), "", {"header is not valid JSON", "NUL byte at offset 2"});
  // nlohmann alone would stop reading at the NUL and accept this header with no tensors.
  expectFileError(std::string("{} \0{\"w\":1}", 10), "", {"header is not valid JSON", "NUL"});
  expectFileError("{\"a\xff\": 1}", "", {"header is not valid JSON"});  // not UTF-8
  expectFileError("[1, 2]", "", {"header must be a JSON object", "[1,2]"});
  expectFileError("\"tensors\"", "", {"header must be a JSON object"});
}

TEST(SafetensorsFile, EntryFieldsMissingOrIllTyped) {
  const std::string d(24, '\0');
  expectFileError(R"({"w":5})", d, {"tensor 'w'", "expected an object"});
  expectFileError(R"({"w":{"shape":[6],"data_offsets":[0,24]}})", d,
                  {"tensor 'w'", "missing field 'dtype'"});
  expectFileError(R"({"w":{"dtype":"F32","data_offsets":[0,24]}})", d,
                  {"tensor 'w'", "missing field 'shape'"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[6]}})", d,
                  {"tensor 'w'", "missing field 'data_offsets'"});
  expectFileError(R"({"w":{"dtype":4,"shape":[6],"data_offsets":[0,24]}})", d,
                  {"tensor 'w'", "'dtype' must be a string"});
  expectFileError(R"({"w":{"dtype":"F32","shape":"6","data_offsets":[0,24]}})", d,
                  {"tensor 'w'", "'shape' must be an array"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}})", d,
                  {"tensor 'w'", "shape[1] must be a non-negative integer", "-3"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[6.0],"data_offsets":[0,24]}})", d,
                  {"tensor 'w'", "shape[0] must be a non-negative integer"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0]}})", d,
                  {"tensor 'w'", "'data_offsets' must be [begin, end]"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24,24]}})", d,
                  {"tensor 'w'", "'data_offsets' must be [begin, end]"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":{"0":24}}})", d,
                  {"tensor 'w'", "'data_offsets' must be [begin, end]"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[-1,24]}})", d,
                  {"tensor 'w'", "data_offsets[0] (begin) must be a non-negative integer"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,"24"]}})", d,
                  {"tensor 'w'", "data_offsets[1] (end) must be a non-negative integer"});
  expectFileError(R"({"":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})", d,
                  {"empty name"});
}

TEST(SafetensorsFile, UnknownDtype) {
  expectFileError(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})",
                  std::string(16, '\0'), {"tensor 'w'", "unknown dtype 'F128'", "BF16"});
  expectFileError(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})",
                  std::string(4, '\0'), {"tensor 'w'", "unknown dtype 'f32'"});
}

TEST(SafetensorsFile, ShapeDisagreesWithOffsets) {
  expectFileError(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
                  std::string(24, '\0'),
                  {"tensor 'w'", "shape [2, 3] of F32 needs 24 bytes", "[0, 20] span 20"});
  expectFileError(R"({"w":{"dtype":"BF16","shape":[0],"data_offsets":[0,2]}})",
                  std::string(2, '\0'), {"tensor 'w'", "needs 0 bytes"});
}

TEST(SafetensorsFile, ShapeOverflow) {
  // 2^32 * 2^32 elements: more than 2^63.
  expectFileError(
      R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "",
      {"tensor 'w'", "more than 2^63 elements"});
  // 2^62 elements fit, but not 2^62 * 8 bytes.
  expectFileError(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})",
                  "", {"tensor 'w'", "overflows a 64-bit byte count"});
  expectFileError(R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})",
                  "", {"tensor 'w'", "shape[0] = 18446744073709551615 is too large"});
  // A zero dimension after huge ones still overflows on the way (the product is checked as it
  // goes, as the reference implementation does).
  expectFileError(
      R"({"w":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", "",
      {"tensor 'w'", "more than 2^63"});
}

TEST(SafetensorsFile, OffsetsOutOfRange) {
  expectFileError(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})",
                  std::string(16, '\0'),
                  {"tensor 'w'", "[0, 24] reach beyond the data section", "16 bytes"});
  expectFileError(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                  std::string(16, '\0'), {"tensor 'w'", "[8, 4]", "begin is after end"});
  expectFileError(
      R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0]}})", "",
      {"tensor 'w'", "begin is after end"});
}

TEST(SafetensorsFile, OverlappingTensors) {
  const std::string d(32, '\0');
  expectFileError(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                  d, {"'a' [0, 16]", "'b' [8, 24]", "overlap"});
  expectFileError(R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                  d, {"'a'", "'b'", "overlap"});
  // Same span twice.
  expectFileError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                  d, {"'a'", "'b'", "overlap"});
  // Overlap with a tensor that is not the sorted neighbour: c starts after b ends but inside a.
  expectFileError(R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                  R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                  d, {"overlap"});
}

TEST(SafetensorsFile, DuplicateNamesAndFields) {
  const std::string d(16, '\0');
  expectFileError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                  d, {"duplicate tensor name 'w'"});
  expectFileError(R"({"w":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", d,
                  {"duplicate key 'dtype'", "'w'"});
  expectFileError(R"({"__metadata__":{"k":"a","k":"b"}})", "",
                  {"duplicate key 'k'", "'__metadata__'"});
  expectFileError(R"({"__metadata__":{},"__metadata__":{}})", "",
                  {"duplicate tensor name '__metadata__'"});
}

TEST(SafetensorsFile, MetadataMustBeStrings) {
  expectFileError(R"({"__metadata__":["a"]})", "", {"__metadata__ must be an object of strings"});
  expectFileError(R"({"__metadata__":{"total":12}})", "",
                  {"__metadata__['total'] must be a string", "12"});
}

TEST(SafetensorsFile, DeepNestingRefused) {
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  expectFileError(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":)" + deep + "}}", "",
                  {"nested deeper than 64"});
}

TEST(SafetensorsFile, ParseFromMemoryNamesTheGivenName) {
  const std::string bytes = stBytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})",
                                    std::string(8, '\0'));
  expectError(
      [&] {
        SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                               "shard-7");
      },
      {"shard-7", "tensor 'w'", "reach beyond the data section"});
}

// ---- SafetensorsWeights ------------------------------------------------------------------------

namespace {
const std::string kMixedHeader =
    R"({"f32":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("f16":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
    R"("bf16":{"dtype":"BF16","shape":[3],"data_offsets":[22,28]},)"
    R"("ids":{"dtype":"I64","shape":[1],"data_offsets":[28,36]}})";
const std::string kMixedData = f32Bytes({1.5f, -2.0f, 0.25f, 1e-40f}) +
                               u16Bytes({0x3c00, 0x0001, 0xfc00}) +
                               u16Bytes({0x3f80, 0xc040, 0x7fc0}) + std::string(8, '\x07');
}  // namespace

TEST(SafetensorsWeights, ReadsF32F16Bf16) {
  TempDir dir;
  writeBytes(dir / "model.safetensors", stBytes(kMixedHeader, kMixedData));
  for (const std::string& path : {dir.str(), dir / "model.safetensors"}) {
    auto w = moe::openSafetensors(path);
    EXPECT_EQ(w->origin(), path);
    EXPECT_EQ(w->names(), (std::vector<std::string>{"bf16", "f16", "f32", "ids"}));
    EXPECT_TRUE(w->has("ids"));
    EXPECT_FALSE(w->has("nope"));
    const moe::TensorMeta& m = w->meta("f32");
    EXPECT_EQ(m.name, "f32");
    EXPECT_EQ(m.type, moe::StorageType::F32);
    EXPECT_EQ(m.shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(m.file, dir / "model.safetensors");
    EXPECT_EQ(w->meta("f16").type, moe::StorageType::F16);
    EXPECT_EQ(w->meta("bf16").type, moe::StorageType::BF16);

    float f[4];
    w->readF32("f32", f);
    EXPECT_EQ(f[0], 1.5f);
    EXPECT_EQ(f[1], -2.0f);
    EXPECT_EQ(f[2], 0.25f);
    EXPECT_EQ(f[3], 1e-40f);
    w->readF32("f16", f);
    EXPECT_EQ(f[0], 1.0f);
    EXPECT_EQ(f[1], std::ldexp(1.0f, -24));
    EXPECT_EQ(f[2], -INFINITY);
    w->readF32("bf16", f);
    EXPECT_EQ(f[0], 1.0f);
    EXPECT_EQ(f[1], -3.0f);
    EXPECT_TRUE(std::isnan(f[2]));

    uint16_t raw;
    std::memcpy(&raw, w->rawData("bf16"), 2);
    EXPECT_EQ(raw, 0x3f80);
    std::memcpy(&raw, w->rawData("f16"), 2);
    EXPECT_EQ(raw, 0x3c00);
  }
}

TEST(SafetensorsWeights, OtherDtypesAreNotWeights) {
  TempDir dir;
  const std::string path = dir / "m.safetensors";
  writeBytes(path, stBytes(kMixedHeader, kMixedData));
  auto w = moe::openSafetensors(path);
  float f[1];
  expectError([&] { w->meta("ids"); }, {path, "tensor 'ids'", "dtype I64", "F32, F16 and BF16"});
  expectError([&] { w->readF32("ids", f); }, {path, "tensor 'ids'", "dtype I64"});
  expectError([&] { w->rawData("ids"); }, {path, "tensor 'ids'", "dtype I64"});
  auto sw = SafetensorsWeights::open(path);
  EXPECT_EQ(sw->tensor("ids").dtype, moe::SafetensorsDtype::I64);
  EXPECT_EQ(sw->tensor("ids").data[0], 7);
}

TEST(SafetensorsWeights, MissingTensorNamesTensorAndFile) {
  TempDir dir;
  const std::string path = dir / "m.safetensors";
  writeBytes(path, stBytes(kMixedHeader, kMixedData));
  auto w = moe::openSafetensors(path);
  float f[4];
  expectError([&] { w->meta("model.norm.weight"); }, {"tensor 'model.norm.weight'", "not found", path});
  expectError([&] { w->readF32("x", f); }, {"tensor 'x'", "not found", path});
  expectError([&] { w->rawData("x"); }, {"tensor 'x'", "not found", path});
}

TEST(SafetensorsWeights, FolderWithoutWeightsOrMissingPath) {
  TempDir dir;
  expectError([&] { moe::openSafetensors(dir.str()); },
              {dir.str(), "neither model.safetensors nor model.safetensors.index.json"});
  expectError([&] { moe::openSafetensors(dir / "nothing.safetensors"); },
              {dir / "nothing.safetensors", "cannot open"});
}

namespace {
// Two shards: a (F32 [2]) and b (F16 [2]) in shard 1, c (BF16 [1]) in shard 2.
const std::string kShard1 = stBytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}})",
                                    f32Bytes({1, 2}) + u16Bytes({0x4000, 0x4200}));
const std::string kShard2 = stBytes(R"({"c":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})",
                                    u16Bytes({0x4080}));
const char* kS1 = "model-00001-of-00002.safetensors";
const char* kS2 = "model-00002-of-00002.safetensors";

void writeSharded(const TempDir& dir, const std::string& index) {
  writeBytes(dir / kS1, kShard1);
  writeBytes(dir / kS2, kShard2);
  writeBytes(dir / "model.safetensors.index.json", index);
}
std::string indexJson(const std::string& weightMap) {
  return R"({"metadata":{"total_size":14},"weight_map":)" + weightMap + R"(,"extra":[1,2]})";
}
const std::string kGoodMap = std::string(R"({"a":")") + kS1 + R"(","b":")" + kS1 + R"(","c":")" +
                             kS2 + R"("})";
}  // namespace

TEST(SafetensorsWeights, ShardedFolder) {
  TempDir dir;
  writeSharded(dir, indexJson(kGoodMap));
  auto w = SafetensorsWeights::open(dir.str());
  EXPECT_EQ(w->files().size(), 2u);  // each shard mapped once
  EXPECT_EQ(w->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(w->meta("a").file, dir / kS1);
  EXPECT_EQ(w->meta("c").file, dir / kS2);
  float f[2];
  w->readF32("b", f);
  EXPECT_EQ(f[0], 2.0f);
  EXPECT_EQ(f[1], 3.0f);
  w->readF32("c", f);
  EXPECT_EQ(f[0], 4.0f);
  expectError([&] { w->meta("d"); }, {"tensor 'd'", "not found", dir.str(), kS1, kS2});
}

TEST(SafetensorsWeights, ShardedTensorNotInWeightMapIsStillServed) {
  TempDir dir;
  writeSharded(dir, indexJson(std::string(R"({"a":")") + kS1 + R"(","c":")" + kS2 + R"("})"));
  auto w = moe::openSafetensors(dir.str());
  EXPECT_TRUE(w->has("b"));
}

TEST(SafetensorsWeights, ShardIndexErrors) {
  const std::string index = "model.safetensors.index.json";
  {  // a shard file that does not exist
    TempDir dir;
    writeSharded(dir, indexJson(std::string(R"({"a":")") + kS1 +
                                R"(","z":"model-00003-of-00003.safetensors"})"));
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, "model-00003-of-00003.safetensors", "tensor 'z'", "cannot open"});
  }
  {  // a tensor missing from its shard
    TempDir dir;
    writeSharded(dir, indexJson(std::string(R"({"a":")") + kS1 + R"(","q":")" + kS2 + R"("})"));
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, "tensor 'q'", dir / kS2, "has no tensor"});
  }
  {  // the weight map names the wrong shard
    TempDir dir;
    writeSharded(dir, indexJson(std::string(R"({"a":")") + kS2 + R"(","c":")" + kS2 + R"("})"));
    expectError([&] { moe::openSafetensors(dir.str()); }, {"tensor 'a'", kS2, "has no tensor"});
  }
  {  // a tensor in two shards
    TempDir dir;
    writeSharded(dir, indexJson(kGoodMap));
    writeBytes(dir / kS2, stBytes(R"({"c":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},)"
                                  R"("a":{"dtype":"BF16","shape":[1],"data_offsets":[2,4]}})",
                                  u16Bytes({0x4080, 0})));
    expectError([&] { moe::openSafetensors(dir.str()); },
                {"tensor 'a'", "two files", dir / kS1, dir / kS2});
  }
  for (const std::string bad : {"../model.safetensors", "sub/model.safetensors", "..", "."}) {
    TempDir dir;
    writeSharded(dir, indexJson(R"({"a":")" + bad + R"("})"));
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, "weight_map['a']", "not a plain file name"});
  }
  {
    TempDir dir;
    writeSharded(dir, indexJson(R"({"a":"x\u0000y"})"));
    expectError([&] { moe::openSafetensors(dir.str()); }, {"not a plain file name"});
  }
  {
    TempDir dir;
    writeSharded(dir, indexJson(R"({"a":1})"));
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, "weight_map['a']", "must be a shard file name"});
  }
  {
    TempDir dir;
    writeSharded(dir, indexJson(R"(["a"])"));
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, "'weight_map' must be an object"});
  }
  {
    TempDir dir;
    writeSharded(dir, indexJson("{}"));
    expectError([&] { moe::openSafetensors(dir.str()); }, {dir / index, "lists no tensors"});
  }
  {
    TempDir dir;
    writeSharded(dir, R"({"metadata":{}})");
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, "missing field 'weight_map'"});
  }
  {
    TempDir dir;
    writeSharded(dir, R"({"weight_map": {"a": ")" + std::string(kS1));
    expectError([&] { moe::openSafetensors(dir.str()); }, {dir / index, "not valid JSON"});
  }
  {
    TempDir dir;
    writeSharded(dir, "[]");
    expectError([&] { moe::openSafetensors(dir.str()); }, {dir / index, "expected a JSON object"});
  }
  {
    TempDir dir;
    writeSharded(dir, std::string(R"({"weight_map":{"a":")") + kS1 + R"(","a":")" + kS2 + R"("}})");
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, "duplicate key 'a'", "'weight_map'"});
  }
  {  // a broken shard: the error names the index, the shard and the shard's own problem
    TempDir dir;
    writeSharded(dir, indexJson(kGoodMap));
    writeBytes(dir / kS2, stBytes(R"({"c":{"dtype":"BF16","shape":[2],"data_offsets":[0,2]}})",
                                  u16Bytes({0x4080})));
    expectError([&] { moe::openSafetensors(dir.str()); },
                {dir / index, dir / kS2, "tensor 'c'", "needs 4 bytes"});
  }
}

// ---- golden cross-check against the Python safetensors package -------------------------------

namespace {
nlohmann::json loadExpected() {
  std::ifstream in(kFixtures + "/expected.json");
  EXPECT_TRUE(in.good()) << kFixtures << "/expected.json";
  return nlohmann::json::parse(in);
}

std::string hexOf(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// Compares every tensor `w` serves from `file` (relative to the fixtures) with expected.json.
void checkAgainstExpected(const SafetensorsWeights& w, const std::string& file,
                          const nlohmann::json& tensors) {
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& e = it.value();
    SCOPED_TRACE(file + ": " + name);
    ASSERT_TRUE(w.has(name));
    const moe::SafetensorsTensor& t = w.tensor(name);
    EXPECT_EQ(moe::safetensorsDtypeName(t.dtype), e["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, e["shape"].get<std::vector<int64_t>>());
    const std::string rawHex = e["raw_hex"].get<std::string>();
    EXPECT_EQ(hexOf(t.data, static_cast<size_t>(t.end - t.begin)), rawHex);
    if (!e.contains("f32_bits")) {
      EXPECT_THROW(w.meta(name), moe::Error);
      continue;
    }
    const auto bits = e["f32_bits"].get<std::vector<uint32_t>>();
    ASSERT_EQ(static_cast<size_t>(t.numel), bits.size());
    EXPECT_EQ(w.meta(name).shape, t.shape);
    EXPECT_EQ(w.meta(name).file, kFixtures + "/" + file);
    EXPECT_EQ(hexOf(static_cast<const uint8_t*>(w.rawData(name)), rawHex.size() / 2), rawHex);
    std::vector<float> out(bits.size() + 1, 12345.0f);  // one guard element
    w.readF32(name, out.data());
    for (size_t i = 0; i < bits.size(); ++i)
      EXPECT_EQ(bitsOf(out[i]), bits[i]) << "element " << i;
    EXPECT_EQ(out.back(), 12345.0f) << "readF32 wrote past numel";
  }
}
}  // namespace

TEST(SafetensorsGolden, EachFileMatchesPython) {
  const nlohmann::json expected = loadExpected();
  ASSERT_EQ(expected.size(), 5u);
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    auto w = SafetensorsWeights::open(kFixtures + "/" + it.key());
    EXPECT_EQ(w->names().size(), it.value().size()) << it.key();
    checkAgainstExpected(*w, it.key(), it.value());
  }
}

TEST(SafetensorsGolden, FoldersMatchPython) {
  const nlohmann::json expected = loadExpected();
  {
    auto w = SafetensorsWeights::open(kFixtures + "/single");
    EXPECT_EQ(w->files().size(), 1u);
    EXPECT_EQ(w->files()[0].metadata().at("format"), "pt");
    checkAgainstExpected(*w, "single/model.safetensors", expected["single/model.safetensors"]);
  }
  {
    auto w = SafetensorsWeights::open(kFixtures + "/sharded");
    ASSERT_EQ(w->files().size(), 2u);
    size_t n = 0;
    for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
      const auto& tensors = expected[std::string("sharded/") + shard];
      n += tensors.size();
      checkAgainstExpected(*w, std::string("sharded/") + shard, tensors);
    }
    EXPECT_EQ(w->names().size(), n);
  }
}

namespace {
// Resident kilobytes of this process's mappings of `path` (/proc/self/smaps "Rss:" lines).
long residentKbOf(const std::string& path) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inFile = false;
  long kb = 0;
  while (std::getline(smaps, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos &&
        line.find(':') > line.find(' ')) {
      inFile = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
    } else if (inFile && line.rfind("Rss:", 0) == 0) {
      kb += std::stol(line.substr(4));
    }
  }
  return kb;
}
}  // namespace

// release(): a tensor read from a mapped file leaves the resident set (the loader's peak memory is
// the converted model plus about one tensor), and reading it again still gives its bytes.
TEST(SafetensorsWeights, ReleaseDropsAMappedTensorsPages) {
  TempDir dir;
  const size_t n = 4u << 20;  // 16 MiB of float32
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i % 1000);
  std::string header = R"({"w":{"dtype":"F32","shape":[)" + std::to_string(n) + R"(],"data_offsets":[0,)" +
                       std::to_string(n * 4) + "]}}";
  std::string bytes(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(bytes.data(), &len, 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values.data()), n * 4);
  const std::string path = dir / "model.safetensors";
  writeBytes(path, bytes);

  auto w = SafetensorsWeights::open(path);
  const auto* p = static_cast<const float*>(w->rawData("w"));
  double sum = 0;
  for (size_t i = 0; i < n; i += 1024) sum += p[i];  // touch every page
  EXPECT_GT(sum, 0);
  const long before = residentKbOf(path);
  EXPECT_GE(before, 15 * 1024) << "the touched tensor should be resident";
  w->release("w");
  const long after = residentKbOf(path);
  EXPECT_LE(after, 64) << "resident after release: " << after << " kB (before " << before << " kB)";
  EXPECT_EQ(std::memcmp(w->rawData("w"), values.data(), n * 4), 0);  // read again from the file
}
