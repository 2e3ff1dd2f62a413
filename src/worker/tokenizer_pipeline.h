// The stages of a Hugging Face tokenizer pipeline between added-token extraction and the model:
// normalizers, pre-tokenizers and decoders, each a small class with the semantics of the
// `tokenizers` component of the same name (tokenizers/src/{normalizers,pre_tokenizers,decoders}).
//
// The text travels as a list of Pieces. Offsets are not tracked (only ids matter here), except for
// one bit: whether a piece starts at the beginning of the input, which Metaspace's
// prepend_scheme "first" needs. A sub-piece keeps that bit only if it starts at the beginning of
// its parent.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "worker/tokenizer_regex.h"

namespace moe::tok {

struct Piece {
  std::string text;
  int32_t id = -1;       // >= 0: an added token, final
  bool atStart = false;  // begins at offset 0 of the input
};

// ---- normalizers: transform the text of one piece --------------------------------------------
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& s) const override;
 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class PrependNormalizer : public Normalizer {  // prepends to non-empty text
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& s) const override;
 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {  // every match of the pattern becomes `content`
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& s) const override;
  // Shared with the Replace decoder.
  static std::string apply(const Regex& pattern, const std::string& content, std::string_view s);
 private:
  std::unique_ptr<Regex> pattern_;
  std::string content_;
};

enum class UnicodeForm { NFC, NFD };
class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  void normalize(std::string& s) const override;
 private:
  UnicodeForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void normalize(std::string& s) const override;
};

class StripNormalizer : public Normalizer {  // strips White_Space characters
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override;
 private:
  bool left_, right_;
};

class ByteLevelNormalizer : public Normalizer {  // bytes -> GPT-2 byte characters
 public:
  void normalize(std::string& s) const override;
};

// ---- pre-tokenizers: split the pieces that are not added tokens -----------------------------
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void preTokenize(std::vector<Piece>& pieces) const = 0;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void preTokenize(std::vector<Piece>& pieces) const override;
 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex);
  void preTokenize(std::vector<Piece>& pieces) const override;
 private:
  bool addPrefixSpace_, useRegex_;
  std::unique_ptr<Regex> regex_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void preTokenize(std::vector<Piece>& pieces) const override;
 private:
  std::unique_ptr<Regex> pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class DigitsPreTokenizer : public PreTokenizer {  // digits = Unicode category N (char::is_numeric)
 public:
  explicit DigitsPreTokenizer(bool individual);
  void preTokenize(std::vector<Piece>& pieces) const override;
 private:
  bool individual_;
  std::unique_ptr<Regex> numeric_;
};

enum class PrependScheme { Always, First, Never };
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void preTokenize(std::vector<Piece>& pieces) const override;
 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class WhitespacePreTokenizer : public PreTokenizer {  // \w+|[^\w\s]+, the rest removed
 public:
  WhitespacePreTokenizer();
  void preTokenize(std::vector<Piece>& pieces) const override;
 private:
  std::unique_ptr<Regex> regex_;
};

class WhitespaceSplitPreTokenizer : public PreTokenizer {  // split on White_Space, removed
 public:
  void preTokenize(std::vector<Piece>& pieces) const override;
};

// ---- decoders: token strings -> text (decode_chain semantics) -------------------------------
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> decodeChain(std::vector<std::string> tokens) const = 0;
  // For listing single tokens (Tokenizer::pieceText): like decodeChain, but without
  // sequence-level stripping and keeping bytes that are not whole characters as raw bytes.
  virtual std::vector<std::string> pieceChain(std::vector<std::string> tokens) const {
    return decodeChain(std::move(tokens));
  }
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
  std::vector<std::string> pieceChain(std::vector<std::string> tokens) const override;
 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

class ByteLevelDecoder : public Decoder {  // byte characters -> bytes -> UTF-8 (lossy)
 public:
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
  std::vector<std::string> pieceChain(std::vector<std::string> tokens) const override;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::unique_ptr<Regex> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
 private:
  std::unique_ptr<Regex> pattern_;
  std::string content_;
};

class ByteFallbackDecoder : public Decoder {  // runs of <0xNN> -> their UTF-8 text (or U+FFFD each)
 public:
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
  std::vector<std::string> pieceChain(std::vector<std::string> tokens) const override;
 private:
  std::vector<std::string> run(std::vector<std::string> tokens, bool raw) const;
};

class FuseDecoder : public Decoder {
 public:
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
};

class StripDecoder : public Decoder {  // removes up to start/stop `content` chars from each token
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
  std::vector<std::string> pieceChain(std::vector<std::string> tokens) const override { return tokens; }
 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
  std::vector<std::string> pieceChain(std::vector<std::string> tokens) const override;
 private:
  std::vector<std::string> run(std::vector<std::string> tokens, bool first) const;
  std::string replacement_;
  PrependScheme scheme_;
};

class BpeSuffixDecoder : public Decoder {  // tokenizers' BPEDecoder: suffix -> space (none at the end)
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  std::vector<std::string> decodeChain(std::vector<std::string> tokens) const override;
 private:
  std::string suffix_;
};

// GPT-2's bytes_to_unicode: the printable character standing for each byte.
const std::string& byteChar(unsigned char b);
// Inverse: the byte of a byte character (code point), or -1.
int byteOfChar(uint32_t cp);

// Splits `s` at `spans` (covering all of s, as Regex::findMatches) according to `behavior`;
// returns (start, end) ranges, empty ones included.
std::vector<std::pair<size_t, size_t>> applyBehavior(const std::vector<Span>& spans, SplitBehavior behavior);

}  // namespace moe::tok
