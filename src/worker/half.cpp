#include "worker/half.h"

#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "half.cpp reads little-endian 16-bit values with memcpy: little-endian hosts only");

namespace moe {
namespace {

float fromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return fromBits(sign | 0x7f800000u | (mant << 13));  // inf, NaN (payload kept)
  if (exp != 0) return fromBits(sign | ((exp + 112u) << 23) | (mant << 13));  // 112 = 127 - 15
  if (mant == 0) return fromBits(sign);                                        // +-0
  // Subnormal: mant * 2^-24. Normalise so that the implicit bit (bit 10) is set.
  uint32_t e = 113;  // exponent of 2^-14 (the smallest normal fp16) in float32, before shifts
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return fromBits(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

float bf16ToFloat(uint16_t b) { return fromBits(static_cast<uint32_t>(b) << 16); }

void halfToFloat(const void* src, float* out, size_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    out[i] = halfToFloat(h);
  }
}

void bf16ToFloat(const void* src, float* out, size_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  for (size_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, p + 2 * i, 2);
    out[i] = bf16ToFloat(b);
  }
}

}  // namespace moe
