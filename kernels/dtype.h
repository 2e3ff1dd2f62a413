// Element types of kernel inputs (logits come from the model in its own dtype) and bit-exact
// host conversions for the CPU references, tests and benchmarks.
//
// fp16 (IEEE binary16) and bf16 (the top half of a float32) widen to float32 exactly; the
// float -> 16-bit conversions round to nearest even (NaN stays NaN, overflow goes to inf), which
// is what torch's .to(bfloat16/half) does. These are host functions; the CUDA kernels use the
// hardware conversions (cuda_bf16.h, cuda_fp16.h), which agree bit for bit when widening.
// The kernels do not depend on src/worker's half.h (module rule: kernels have no deps).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace moe::kernels {

enum class DType { F32, BF16, F16 };

constexpr size_t dtypeSize(DType t) { return t == DType::F32 ? 4 : 2; }
constexpr const char* dtypeName(DType t) { return t == DType::F32 ? "fp32" : t == DType::BF16 ? "bf16" : "fp16"; }

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t floatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16ToFloat(uint16_t b) { return bitsToFloat(static_cast<uint32_t>(b) << 16); }

inline uint16_t floatToBf16(float f) {
  const uint32_t u = floatToBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    // Subnormal (or zero): mant * 2^-24, exact in float32.
    const float v = static_cast<float>(mant) * bitsToFloat(0x33800000u);
    return sign ? -v : v;
  }
  return bitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

// Round to nearest even (F. Giesen's float_to_half_fast3_rtne); relies on the default FP
// rounding mode for the subnormal range.
inline uint16_t floatToHalf(float f) {
  uint32_t u = floatToBits(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint32_t o;
  if (u >= (127u + 16u) << 23) {  // >= 65536, inf or NaN
    o = u > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (u < 113u << 23) {  // half subnormal or zero
    const float magic = bitsToFloat(((127u - 15u) + (23u - 10u) + 1u) << 23);
    o = floatToBits(bitsToFloat(u) + magic) - floatToBits(magic);
  } else {
    const uint32_t odd = (u >> 13) & 1u;
    u += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + odd;
    o = u >> 13;
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

// Element i of an array of T at p, widened to float (T known at compile time: the references' loops).
template <DType T>
inline float elementAt(const void* p, int64_t i) {
  if constexpr (T == DType::F32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (T == DType::BF16) {
    return bf16ToFloat(static_cast<const uint16_t*>(p)[i]);
  } else {
    return halfToFloat(static_cast<const uint16_t*>(p)[i]);
  }
}

// Element i of a row-major array of `t` at `p`, widened to float.
inline float loadAsFloat(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::F32:
      return static_cast<const float*>(p)[i];
    case DType::BF16:
      return bf16ToFloat(static_cast<const uint16_t*>(p)[i]);
    case DType::F16:
      return halfToFloat(static_cast<const uint16_t*>(p)[i]);
  }
  return 0.0f;
}

}  // namespace moe::kernels
