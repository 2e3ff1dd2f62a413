#include "worker/dequantize.h"

#include <cstring>

#include "common/error.h"
#include "worker/half.h"

// F32 blocks are copied and GGUF integers assembled byte by byte, so only the float layout matters.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "moe-dist reads little-endian tensor data");

namespace moe {
namespace {

constexpr int kQK = 32;    // elements per block of the Q*_0 / Q*_1 formats
constexpr int kQKK = 256;  // elements per super-block of the K formats

uint16_t loadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

float loadHalf(const uint8_t* p) { return halfToFloat(loadU16(p)); }

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block, packed in 12 bytes:
// sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 split into a
// low nibble in bytes 8-11 and two high bits in the top of bytes 0-3 / 4-7.
void scaleMinK4(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

constexpr BlockFormat kFormats[] = {
    {StorageType::F32, 1, 4, dequantizeF32},
    {StorageType::F16, 1, 2, dequantizeF16},
    {StorageType::BF16, 1, 2, dequantizeBF16},
    {StorageType::Q8_0, kQK, 2 + kQK, dequantizeQ8_0},
    {StorageType::Q4_0, kQK, 2 + kQK / 2, dequantizeQ4_0},
    {StorageType::Q4_1, kQK, 2 + 2 + kQK / 2, dequantizeQ4_1},
    {StorageType::Q5_0, kQK, 2 + 4 + kQK / 2, dequantizeQ5_0},
    {StorageType::Q5_1, kQK, 2 + 2 + 4 + kQK / 2, dequantizeQ5_1},
    {StorageType::Q4_K, kQKK, 2 + 2 + 12 + kQKK / 2, dequantizeQ4_K},
    {StorageType::Q5_K, kQKK, 2 + 2 + 12 + kQKK / 8 + kQKK / 2, dequantizeQ5_K},
    {StorageType::Q6_K, kQKK, kQKK / 2 + kQKK / 4 + kQKK / 16 + 2, dequantizeQ6_K},
};

}  // namespace

const BlockFormat& blockFormat(StorageType t) {
  for (const BlockFormat& f : kFormats)
    if (f.type == t) return f;
  MOE_THROW("no block format for storage type ", static_cast<int>(t));
}

void dequantizeF32(const void* block, float* out) { std::memcpy(out, block, sizeof(float)); }

void dequantizeF16(const void* block, float* out) { *out = loadHalf(static_cast<const uint8_t*>(block)); }

void dequantizeBF16(const void* block, float* out) {
  *out = bf16ToFloat(loadU16(static_cast<const uint8_t*>(block)));
}

// Q8_0: fp16 scale d, 32 int8 quants; x = q * d.
void dequantizeQ8_0(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const float d = loadHalf(b);
  for (int j = 0; j < kQK; ++j) out[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// Q4_0: fp16 scale d, 16 bytes of nibbles (low nibbles = elements 0-15, high = 16-31);
// x = (q - 8) * d.
void dequantizeQ4_0(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const float d = loadHalf(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    out[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    out[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1: fp16 scale d and offset m, nibbles as Q4_0; x = q * d + m.
void dequantizeQ4_1(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const float d = loadHalf(b);
  const float m = loadHalf(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    const float x0 = static_cast<float>(qs[j] & 0x0F) * d;
    const float x1 = static_cast<float>(qs[j] >> 4) * d;
    out[j] = x0 + m;
    out[j + kQK / 2] = x1 + m;
  }
}

// Q5_0: fp16 scale d, 32 high bits (little-endian u32, bit j = element j), nibbles as Q4_0;
// x = (q - 16) * d.
void dequantizeQ5_0(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const float d = loadHalf(b);
  const uint32_t qh = b[2] | (b[3] << 8) | (b[4] << 16) | (static_cast<uint32_t>(b[5]) << 24);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int h0 = ((qh >> j) & 1) << 4;
    const int h1 = ((qh >> (j + 16)) & 1) << 4;
    out[j] = static_cast<float>(((qs[j] & 0x0F) | h0) - 16) * d;
    out[j + kQK / 2] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
  }
}

// Q5_1: fp16 scale d and offset m, high bits and nibbles as Q5_0; x = q * d + m.
void dequantizeQ5_1(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const float d = loadHalf(b);
  const float m = loadHalf(b + 2);
  const uint32_t qh = b[4] | (b[5] << 8) | (b[6] << 16) | (static_cast<uint32_t>(b[7]) << 24);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int h0 = ((qh >> j) & 1) << 4;
    const int h1 = ((qh >> (j + 16)) & 1) << 4;
    const float x0 = static_cast<float>((qs[j] & 0x0F) | h0) * d;
    const float x1 = static_cast<float>((qs[j] >> 4) | h1) * d;
    out[j] = x0 + m;
    out[j + kQK / 2] = x1 + m;
  }
}

// Q4_K: fp16 d and dmin, 12 bytes of packed 6-bit scales/mins for 8 sub-blocks of 32, 128 bytes of
// nibbles. Each 32-byte chunk holds two sub-blocks: low nibbles the first, high nibbles the second.
// x = (d * scale) * q - (dmin * min).
void dequantizeQ4_K(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const float d = loadHalf(b);
  const float dmin = loadHalf(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int chunk = 0; chunk < 4; ++chunk) {
    uint8_t sc, m;
    scaleMinK4(2 * chunk, scales, sc, m);
    const float d1 = d * sc;
    const float m1 = dmin * m;
    scaleMinK4(2 * chunk + 1, scales, sc, m);
    const float d2 = d * sc;
    const float m2 = dmin * m;
    for (int l = 0; l < 32; ++l) {
      const float y = d1 * static_cast<float>(q[l] & 0x0F);
      out[l] = y - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const float y = d2 * static_cast<float>(q[l] >> 4);
      out[32 + l] = y - m2;
    }
    q += 32;
    out += 64;
  }
}

// Q5_K: as Q4_K plus 32 bytes of high bits: bit 2c of qh[l] belongs to the low-nibble sub-block of
// chunk c, bit 2c+1 to its high-nibble sub-block.
void dequantizeQ5_K(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const float d = loadHalf(b);
  const float dmin = loadHalf(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  for (int chunk = 0; chunk < 4; ++chunk) {
    uint8_t sc, m;
    scaleMinK4(2 * chunk, scales, sc, m);
    const float d1 = d * sc;
    const float m1 = dmin * m;
    scaleMinK4(2 * chunk + 1, scales, sc, m);
    const float d2 = d * sc;
    const float m2 = dmin * m;
    const int u1 = 1 << (2 * chunk);
    const int u2 = 2 << (2 * chunk);
    for (int l = 0; l < 32; ++l) {
      const int v = (ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0);
      const float y = d1 * static_cast<float>(v);
      out[l] = y - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const int v = (ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0);
      const float y = d2 * static_cast<float>(v);
      out[32 + l] = y - m2;
    }
    ql += 32;
    out += 64;
  }
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 int8 scales (one per 16
// elements), fp16 d. Each half (128 elements) takes 64 bytes of ql and 32 of qh:
// element l + 32k (k = 0..3) combines nibble (k & 1 ? ql[l+32] : ql[l]) >> (k < 2 ? 0 : 4) with
// bits 2k..2k+1 of qh[l]. x = (d * scale) * (q - 32).
void dequantizeQ6_K(const void* block, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(block);
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = loadHalf(b + 208);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      const float s1 = d * sc[is + 0];
      const float s2 = d * sc[is + 2];
      const float s3 = d * sc[is + 4];
      const float s4 = d * sc[is + 6];
      out[l + 0] = s1 * static_cast<float>(q1);
      out[l + 32] = s2 * static_cast<float>(q2);
      out[l + 64] = s3 * static_cast<float>(q3);
      out[l + 96] = s4 * static_cast<float>(q4);
    }
    out += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

int64_t storageBytes(StorageType t, int64_t count) {
  const BlockFormat& f = blockFormat(t);
  MOE_CHECK(count >= 0, "negative element count ", count, " for ", storageTypeName(t));
  MOE_CHECK(count % f.elements == 0, storageTypeName(t), " stores blocks of ", f.elements,
            " elements; ", count, " is not a multiple");
  const int64_t blocks = count / f.elements;
  MOE_CHECK(blocks <= INT64_MAX / f.bytes, storageTypeName(t), " size of ", count, " elements overflows");
  return blocks * f.bytes;
}

void dequantize(StorageType t, const void* src, float* out, int64_t count) {
  const BlockFormat& f = blockFormat(t);
  MOE_CHECK(count >= 0 && count % f.elements == 0, "cannot dequantize ", count, " elements of ",
            storageTypeName(t), ": not a multiple of its block size ", f.elements);
  if (count == 0) return;  // src and out may then be null
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case StorageType::F32:
      std::memcpy(out, p, static_cast<size_t>(count) * sizeof(float));
      return;
    case StorageType::F16:
      halfToFloat(p, out, static_cast<size_t>(count));
      return;
    case StorageType::BF16:
      bf16ToFloat(p, out, static_cast<size_t>(count));
      return;
    default:
      for (int64_t i = 0, blocks = count / f.elements; i < blocks; ++i)
        f.dequantize(p + i * f.bytes, out + i * f.elements);
  }
}

}  // namespace moe
