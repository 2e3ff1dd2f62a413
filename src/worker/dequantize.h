// Block formats of the storage types and their conversion to float32.
//
// A tensor row is a sequence of blocks; each block holds a fixed number of elements in a fixed
// number of bytes (ggml's layout, as llama.cpp writes it into GGUF files). Each format is one small
// pure function that turns exactly one block into floats, beside the table of block sizes, so each
// can be tested on golden blocks (tests/unit/test_dequantize.cpp) and composed by dequantize().
//
// Arithmetic follows ggml's reference C code (ggml-quants.c dequantize_row_*) in float32, product
// by product in the same order: the results are bit-identical to ggml's and to the `gguf` Python
// package's dequantization. Each product and sum is a separate statement so that a compiler that
// contracts expressions into fused multiply-adds (clang's default) cannot change a result.
#pragma once

#include <cstddef>
#include <cstdint>

#include "worker/weights.h"

namespace moe {

// One block: `elements` values stored in `bytes` bytes. Plain float types are one-element blocks.
struct BlockFormat {
  StorageType type;
  int64_t elements;
  int64_t bytes;
  void (*dequantize)(const void* block, float* out);  // out[elements]
};

// The format of every StorageType (a table lookup; never fails).
const BlockFormat& blockFormat(StorageType t);

// One block each; `block` may be unaligned.
void dequantizeF32(const void* block, float* out);   // 1 element, 4 bytes
void dequantizeF16(const void* block, float* out);   // 1 element, 2 bytes (IEEE binary16)
void dequantizeBF16(const void* block, float* out);  // 1 element, 2 bytes (bfloat16)
void dequantizeQ8_0(const void* block, float* out);  // 32 elements, 34 bytes
void dequantizeQ4_0(const void* block, float* out);  // 32 elements, 18 bytes
void dequantizeQ4_1(const void* block, float* out);  // 32 elements, 20 bytes
void dequantizeQ5_0(const void* block, float* out);  // 32 elements, 22 bytes
void dequantizeQ5_1(const void* block, float* out);  // 32 elements, 24 bytes
void dequantizeQ4_K(const void* block, float* out);  // 256 elements, 144 bytes
void dequantizeQ5_K(const void* block, float* out);  // 256 elements, 176 bytes
void dequantizeQ6_K(const void* block, float* out);  // 256 elements, 210 bytes

// Converts `count` elements of type `t` stored at `src` into out[count]. `count` must be a multiple
// of the block size (moe::Error otherwise); the caller guarantees that `src` holds
// count / elements * bytes readable bytes.
void dequantize(StorageType t, const void* src, float* out, int64_t count);

// Bytes that `count` elements of type `t` occupy; moe::Error when `count` is negative or not a
// multiple of the block size, or when the size overflows int64.
int64_t storageBytes(StorageType t, int64_t count);

}  // namespace moe
