// IEEE binary16 (fp16) and bfloat16 to float32, bit-exact, without hardware support.
//
// fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every fp16 value, subnormals included, is
// exactly representable in float32, so the conversion never rounds; inf stays inf and a NaN stays
// a NaN with its payload shifted into the float32 mantissa (quiet bit preserved).
// bf16: the top 16 bits of a float32, so the conversion is a shift.
// The array forms take `const void*` because the source is usually a mapped file whose tensors
// need not be 2-byte aligned; they read each element with memcpy. Little-endian storage.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moe {

float halfToFloat(uint16_t h);
float bf16ToFloat(uint16_t b);

// out[i] = conversion of the i-th little-endian 16-bit value at src, for i < n.
void halfToFloat(const void* src, float* out, size_t n);
void bf16ToFloat(const void* src, float* out, size_t n);

}  // namespace moe
