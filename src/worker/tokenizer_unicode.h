// Unicode pieces of the tokenizer: U+FFFD replacement of invalid UTF-8, NFC/NFD and per-character
// lowercase (as Rust's char::to_lowercase, which Hugging Face tokenizers uses), White_Space.
// Tables are generated from Python's unicodedata (tokenizer_unicode_data.cpp); inputs to these
// functions are valid UTF-8 (the tokenizer replaces invalid bytes first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe::tok {

struct Decomposition { uint32_t cp, first, second; };  // second == 0: singleton
struct CombiningClass { uint32_t cp; uint8_t ccc; };
struct Composition { uint32_t first, second, composite; };
struct LowercaseMapping { uint32_t cp, first, second; };  // second == 0: one code point

extern const char* const kUnicodeTablesVersion;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionsSize;
extern const CombiningClass kCombiningClasses[];
extern const size_t kCombiningClassesSize;
extern const Composition kCompositions[];
extern const size_t kCompositionsSize;
extern const LowercaseMapping kLowercase[];
extern const size_t kLowercaseSize;

// Replaces each maximal ill-formed subsequence with U+FFFD, exactly as Python's
// bytes.decode("utf-8", errors="replace") does (Unicode's "maximal subpart" practice).
std::string replaceInvalidUtf8(std::string_view s);

std::string nfc(std::string_view s);
std::string nfd(std::string_view s);
std::string lowercase(std::string_view s);

// The Unicode White_Space property (Rust's char::is_whitespace and regex \s).
bool isWhiteSpace(uint32_t cp);

// Decodes the code point at s[pos] of a valid UTF-8 string and advances pos.
uint32_t nextCodePoint(std::string_view s, size_t& pos);

}  // namespace moe::tok
