// UTF-8 validation and decoding (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe {

constexpr size_t kUtf8Valid = static_cast<size_t>(-1);

// Byte offset of the first invalid sequence in `s`, or kUtf8Valid.
size_t findInvalidUtf8(std::string_view s);

// Decodes the code point starting at s[pos]; sets `len` to its byte length. Returns -1 (len 1) for
// an invalid sequence.
int32_t decodeUtf8(std::string_view s, size_t pos, size_t& len);

// Appends the UTF-8 encoding of `cp` (must be a valid scalar value).
void appendUtf8(std::string& out, uint32_t cp);

}  // namespace moe
