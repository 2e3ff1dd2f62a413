// Block formats on hand-built golden blocks: each test chooses the logical content of a block
// (scales as exact fp16 powers of two, quants and sub-block scales from a seeded generator), packs
// it the way ggml lays it out (the packers here are written from the format description, the
// inverse of what dequantize.cpp reads), and expects the exact values. With power-of-two scales and
// small integer quants every product is exact, so the expectation does not depend on the order of
// operations. Bit-exactness against the reference implementation (the `gguf` Python package) on
// random blocks is tested in test_gguf.cpp with the committed fixtures.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/error.h"
#include "worker/dequantize.h"
#include "worker/gguf.h"

using moe::StorageType;

namespace {

// Exact fp16 encodings of the scales used below.
constexpr uint16_t kHalf0_25 = 0x3400;   // 0.25
constexpr uint16_t kHalf0_125 = 0x3000;  // 0.125
constexpr uint16_t kHalfMinus1_5 = 0xBE00;  // -1.5
constexpr uint16_t kHalf2 = 0x4000;      // 2.0

void putU16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v & 0xFF);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}

std::vector<int> randomInts(size_t n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> v(n);
  for (int& x : v) x = dist(rng);
  return v;
}

std::vector<float> run(StorageType t, const std::vector<uint8_t>& block) {
  const moe::BlockFormat& f = moe::blockFormat(t);
  EXPECT_EQ(static_cast<int64_t>(block.size()), f.bytes);
  std::vector<float> out(static_cast<size_t>(f.elements), -12345.0f);
  f.dequantize(block.data(), out.data());
  return out;
}

void expectExact(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  int shown = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != static_cast<float>(want[i]) && shown++ < 8)
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", expected " << want[i];
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1 put element j (< 16) in the low nibble of qs[j] and element j + 16 in
// its high nibble; the fifth bit of element e is bit e of the little-endian 32-bit qh.
void packNibbles(std::vector<uint8_t>& b, size_t qsAt, const std::vector<int>& q) {
  for (int j = 0; j < 16; ++j) b[qsAt + j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
}
void packHighBits(std::vector<uint8_t>& b, size_t qhAt, const std::vector<int>& q) {
  uint32_t qh = 0;
  for (int e = 0; e < 32; ++e) qh |= static_cast<uint32_t>((q[e] >> 4) & 1) << e;
  for (int i = 0; i < 4; ++i) b[qhAt + i] = static_cast<uint8_t>(qh >> (8 * i));
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scale and min each, packed into 12 bytes.
void packScalesK4(std::vector<uint8_t>& b, size_t at, const std::vector<int>& sc, const std::vector<int>& mn) {
  for (int j = 0; j < 4; ++j) {
    b[at + j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b[at + 4 + j] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    b[at + 8 + j] = static_cast<uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
}
// Element e of a K super-block: chunk e / 64 of 32 bytes; the first 32 elements of a chunk are the
// low nibbles (sub-block 2*chunk), the next 32 the high nibbles (sub-block 2*chunk + 1).
int subBlockK4(int e) { return e / 32; }
size_t byteK4(int e) { return static_cast<size_t>(32 * (e / 64) + e % 32); }
bool highNibbleK4(int e) { return (e % 64) >= 32; }

}  // namespace

TEST(Dequantize, BlockTableMatchesGgmlTypeTable) {
  struct Want { StorageType t; int64_t elements, bytes; };
  const Want wants[] = {{StorageType::F32, 1, 4},    {StorageType::F16, 1, 2},    {StorageType::BF16, 1, 2},
                        {StorageType::Q8_0, 32, 34}, {StorageType::Q4_0, 32, 18}, {StorageType::Q4_1, 32, 20},
                        {StorageType::Q5_0, 32, 22}, {StorageType::Q5_1, 32, 24}, {StorageType::Q4_K, 256, 144},
                        {StorageType::Q5_K, 256, 176}, {StorageType::Q6_K, 256, 210}};
  for (const Want& w : wants) {
    const moe::BlockFormat& f = moe::blockFormat(w.t);
    EXPECT_EQ(f.type, w.t);
    EXPECT_EQ(f.elements, w.elements) << moe::storageTypeName(w.t);
    EXPECT_EQ(f.bytes, w.bytes) << moe::storageTypeName(w.t);
    EXPECT_NE(f.dequantize, nullptr);
  }
  // Every supported ggml type maps to the StorageType of the same name and the same block layout.
  int supported = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    const moe::GgmlType* g = moe::ggmlType(id);
    if (!g || !g->supported) continue;
    ++supported;
    const moe::BlockFormat& f = moe::blockFormat(g->storage);
    EXPECT_STREQ(moe::storageTypeName(g->storage), g->name);
    EXPECT_EQ(f.elements, g->blockElements) << g->name;
    EXPECT_EQ(f.bytes, g->blockBytes) << g->name;
  }
  EXPECT_EQ(supported, 11);
}

TEST(Dequantize, PlainFloats) {
  float out;
  const uint8_t f32[4] = {0x00, 0x00, 0xC0, 0xBF};  // -1.5f
  moe::dequantizeF32(f32, &out);
  EXPECT_EQ(out, -1.5f);
  const uint8_t f16[2] = {0x00, 0x3C};  // 1.0
  moe::dequantizeF16(f16, &out);
  EXPECT_EQ(out, 1.0f);
  const uint8_t f16sub[2] = {0x01, 0x00};  // smallest subnormal, 2^-24
  moe::dequantizeF16(f16sub, &out);
  EXPECT_EQ(out, std::ldexp(1.0f, -24));
  const uint8_t bf16[2] = {0x49, 0x40};  // 0x4049 -> 3.140625
  moe::dequantizeBF16(bf16, &out);
  EXPECT_EQ(out, 3.140625f);
}

TEST(Dequantize, Q8_0) {
  std::vector<uint8_t> b(34);
  putU16(b, 0, kHalf0_25);
  const std::vector<int> q = randomInts(32, -128, 127, 1);
  std::vector<double> want(32);
  for (int j = 0; j < 32; ++j) {
    b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q[j]));
    want[j] = 0.25 * q[j];
  }
  expectExact(run(StorageType::Q8_0, b), want);
}

TEST(Dequantize, Q4_0) {
  std::vector<uint8_t> b(18);
  putU16(b, 0, kHalf2);
  const std::vector<int> q = randomInts(32, 0, 15, 2);
  packNibbles(b, 2, q);
  std::vector<double> want(32);
  for (int e = 0; e < 32; ++e) want[e] = 2.0 * (q[e] - 8);
  expectExact(run(StorageType::Q4_0, b), want);
}

TEST(Dequantize, Q4_1) {
  std::vector<uint8_t> b(20);
  putU16(b, 0, kHalf0_25);
  putU16(b, 2, kHalfMinus1_5);
  const std::vector<int> q = randomInts(32, 0, 15, 3);
  packNibbles(b, 4, q);
  std::vector<double> want(32);
  for (int e = 0; e < 32; ++e) want[e] = 0.25 * q[e] - 1.5;
  expectExact(run(StorageType::Q4_1, b), want);
}

TEST(Dequantize, Q5_0) {
  std::vector<uint8_t> b(22);
  putU16(b, 0, kHalf0_125);
  const std::vector<int> q = randomInts(32, 0, 31, 4);
  packHighBits(b, 2, q);
  packNibbles(b, 6, q);
  std::vector<double> want(32);
  for (int e = 0; e < 32; ++e) want[e] = 0.125 * (q[e] - 16);
  expectExact(run(StorageType::Q5_0, b), want);
}

TEST(Dequantize, Q5_1) {
  std::vector<uint8_t> b(24);
  putU16(b, 0, kHalf0_25);
  putU16(b, 2, kHalfMinus1_5);
  const std::vector<int> q = randomInts(32, 0, 31, 5);
  packHighBits(b, 4, q);
  packNibbles(b, 8, q);
  std::vector<double> want(32);
  for (int e = 0; e < 32; ++e) want[e] = 0.25 * q[e] - 1.5;
  expectExact(run(StorageType::Q5_1, b), want);
}

TEST(Dequantize, Q4_K) {
  std::vector<uint8_t> b(144);
  putU16(b, 0, kHalf0_125);
  putU16(b, 2, kHalf0_25);
  const std::vector<int> sc = randomInts(8, 0, 63, 6), mn = randomInts(8, 0, 63, 7);
  const std::vector<int> q = randomInts(256, 0, 15, 8);
  packScalesK4(b, 4, sc, mn);
  std::vector<double> want(256);
  for (int e = 0; e < 256; ++e) {
    b[16 + byteK4(e)] |= static_cast<uint8_t>(highNibbleK4(e) ? q[e] << 4 : q[e]);
    const int s = subBlockK4(e);
    want[e] = 0.125 * sc[s] * q[e] - 0.25 * mn[s];
  }
  expectExact(run(StorageType::Q4_K, b), want);
}

TEST(Dequantize, Q5_K) {
  std::vector<uint8_t> b(176);
  putU16(b, 0, kHalf0_25);
  putU16(b, 2, kHalf0_125);
  const std::vector<int> sc = randomInts(8, 0, 63, 9), mn = randomInts(8, 0, 63, 10);
  const std::vector<int> q = randomInts(256, 0, 31, 11);
  packScalesK4(b, 4, sc, mn);
  std::vector<double> want(256);
  for (int e = 0; e < 256; ++e) {
    const int lo = q[e] & 15;
    b[48 + byteK4(e)] |= static_cast<uint8_t>(highNibbleK4(e) ? lo << 4 : lo);
    // The fifth bit: byte e % 32 of qh, bit = the sub-block index.
    b[16 + e % 32] |= static_cast<uint8_t>(((q[e] >> 4) & 1) << subBlockK4(e));
    const int s = subBlockK4(e);
    want[e] = 0.25 * sc[s] * q[e] - 0.125 * mn[s];
  }
  expectExact(run(StorageType::Q5_K, b), want);
}

TEST(Dequantize, Q6_K) {
  std::vector<uint8_t> b(210);
  putU16(b, 208, kHalf0_125);
  const std::vector<int> sc = randomInts(16, -128, 127, 12);
  const std::vector<int> q = randomInts(256, 0, 63, 13);
  for (int i = 0; i < 16; ++i) b[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(sc[i]));
  std::vector<double> want(256);
  for (int e = 0; e < 256; ++e) {
    // Half h = e / 128 uses ql[64h..], qh[32h..], scales[8h..]; within it element l + 32k
    // (l < 32, k < 4) takes ql[l + 32(k & 1)] (low nibble for k < 2, high for k >= 2), bits 2k, 2k+1
    // of qh[l], and scale l / 16 + 2k.
    const int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
    const size_t qlAt = static_cast<size_t>(64 * h + l + ((k & 1) ? 32 : 0));
    b[qlAt] |= static_cast<uint8_t>(k < 2 ? (q[e] & 15) : (q[e] & 15) << 4);
    b[128 + 32 * h + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * k));
    want[e] = 0.125 * sc[8 * h + l / 16 + 2 * k] * (q[e] - 32);
  }
  expectExact(run(StorageType::Q6_K, b), want);
}

TEST(Dequantize, RowsAndSizes) {
  // dequantize() over several blocks equals the block function applied block by block.
  std::vector<uint8_t> raw(3 * 210);
  std::mt19937 rng(14);
  for (uint8_t& x : raw) x = static_cast<uint8_t>(rng());
  for (int i = 0; i < 3; ++i) putU16(raw, i * 210 + 208, kHalf0_25);
  std::vector<float> row(3 * 256), one(256);
  moe::dequantize(StorageType::Q6_K, raw.data(), row.data(), 3 * 256);
  for (int i = 0; i < 3; ++i) {
    moe::dequantizeQ6_K(raw.data() + i * 210, one.data());
    EXPECT_EQ(std::memcmp(one.data(), row.data() + i * 256, 256 * sizeof(float)), 0) << "block " << i;
  }

  EXPECT_EQ(moe::storageBytes(StorageType::Q4_K, 512), 288);
  EXPECT_EQ(moe::storageBytes(StorageType::F16, 7), 14);
  EXPECT_EQ(moe::storageBytes(StorageType::Q8_0, 0), 0);
  try {
    moe::storageBytes(StorageType::Q4_K, 100);
    ADD_FAILURE() << "expected an error";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_K stores blocks of 256"), std::string::npos) << e.what();
  }
  EXPECT_THROW(moe::storageBytes(StorageType::F32, INT64_MAX), moe::Error);
  EXPECT_EQ(moe::storageBytes(StorageType::Q6_K, INT64_MAX - INT64_MAX % 256), (INT64_MAX / 256) * 210);
  EXPECT_THROW(moe::storageBytes(StorageType::F32, -1), moe::Error);
  EXPECT_THROW(moe::dequantize(StorageType::Q4_0, raw.data(), row.data(), 33), moe::Error);
}
