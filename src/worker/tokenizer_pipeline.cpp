#include "worker/tokenizer_pipeline.h"

#include <algorithm>
#include <array>

#include "common/error.h"
#include "common/utf8.h"
#include "worker/tokenizer_unicode.h"

namespace moe::tok {
namespace {

const char* const kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct ByteTables {
  std::array<std::string, 256> chars;
  std::array<int, 512> bytes;  // code point (< 512) -> byte
  ByteTables() {
    bytes.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + static_cast<uint32_t>(n++);
      appendUtf8(chars[b], cp);
      bytes[cp] = b;
    }
  }
};

const ByteTables& byteTables() {
  static const ByteTables t;
  return t;
}

// Replaces each non-added piece by the pieces `split` makes of it (empty ones dropped).
template <typename F>
void splitPieces(std::vector<Piece>& pieces, F split) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (auto& p : pieces) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    split(p, out);
  }
  pieces = std::move(out);
}

void emitRanges(const Piece& p, const std::vector<std::pair<size_t, size_t>>& ranges, std::vector<Piece>& out) {
  for (const auto& [a, b] : ranges) {
    if (a == b) continue;
    out.push_back(Piece{p.text.substr(a, b - a), -1, p.atStart && a == 0});
  }
}

// Spans of each occurrence of the code point sequence `c` (one character) as a match.
std::vector<Span> charSpans(std::string_view s, std::string_view c) {
  std::vector<Span> spans;
  if (s.empty()) return {{0, 0, false}};
  size_t prev = 0;
  for (size_t pos = s.find(c); !c.empty() && pos != std::string_view::npos; pos = s.find(c, pos + c.size())) {
    if (pos > prev) spans.push_back({prev, pos, false});
    spans.push_back({pos, pos + c.size(), true});
    prev = pos + c.size();
  }
  if (prev < s.size()) spans.push_back({prev, s.size(), false});
  return spans;
}

// Repeating a lengthening step (ByteLevel twice doubles the bytes each time, Replace of an empty
// match inserts everywhere) could otherwise make a crafted tokenizer.json exhaust memory.
void checkGrowth(size_t original, size_t now, const char* stage) {
  const size_t limit = (size_t{16} << 20) + 64 * original;
  MOE_CHECK(now <= limit, stage, ": the text grew from ", original, " to more than ", limit,
            " bytes (the tokenizer's components keep lengthening it)");
}

size_t totalSize(const std::vector<Piece>& pieces) {
  size_t n = 0;
  for (const auto& p : pieces) n += p.text.size();
  return n;
}

}  // namespace

const std::string& byteChar(unsigned char b) { return byteTables().chars[b]; }

int byteOfChar(uint32_t cp) { return cp < 512 ? byteTables().bytes[cp] : -1; }

std::vector<std::pair<size_t, size_t>> applyBehavior(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(spans.size());
  bool previousMatch = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& s : spans) out.push_back({s.start, s.end});
      break;
    case SplitBehavior::Removed:
      for (const auto& s : spans)
        if (!s.match) out.push_back({s.start, s.end});
      break;
    case SplitBehavior::Contiguous:
      for (const auto& s : spans) {
        if (s.match == previousMatch && !out.empty()) out.back().second = s.end;
        else out.push_back({s.start, s.end});
        previousMatch = s.match;
      }
      break;
    case SplitBehavior::MergedWithPrevious:
      for (const auto& s : spans) {
        if (s.match && !previousMatch && !out.empty()) out.back().second = s.end;
        else out.push_back({s.start, s.end});
        previousMatch = s.match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previousMatch && !out.empty()) out.back().first = it->start;
        else out.push_back({it->start, it->end});
        previousMatch = it->match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

// ---- normalizers ------------------------------------------------------------------------------
void SequenceNormalizer::normalize(std::string& s) const {
  const size_t original = s.size();
  for (const auto& n : steps_) {
    n->normalize(s);
    checkGrowth(original, s.size(), "normalizer");
  }
}

void PrependNormalizer::normalize(std::string& s) const {
  if (!s.empty()) s.insert(0, prefix_);
}

std::string ReplaceNormalizer::apply(const Regex& pattern, const std::string& content, std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const auto& span : pattern.findMatches(s)) {
    if (span.match) out += content;
    else out.append(s.substr(span.start, span.end - span.start));
    checkGrowth(s.size(), out.size(), "Replace");
  }
  return out;
}

void ReplaceNormalizer::normalize(std::string& s) const { s = apply(*pattern_, content_, s); }

void UnicodeNormalizer::normalize(std::string& s) const { s = form_ == UnicodeForm::NFC ? nfc(s) : nfd(s); }

void LowercaseNormalizer::normalize(std::string& s) const { s = lowercase(s); }

void StripNormalizer::normalize(std::string& s) const {
  size_t begin = 0, end = s.size();
  if (left_) {
    while (begin < end) {
      size_t pos = begin;
      if (!isWhiteSpace(nextCodePoint(s, pos))) break;
      begin = pos;
    }
  }
  if (right_) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      size_t pos = start;
      if (!isWhiteSpace(nextCodePoint(s, pos))) break;
      end = start;
    }
  }
  s = s.substr(begin, end - begin);
}

void ByteLevelNormalizer::normalize(std::string& s) const {
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s) out += byteChar(b);
  s = std::move(out);
}

// ---- pre-tokenizers ---------------------------------------------------------------------------
void SequencePreTokenizer::preTokenize(std::vector<Piece>& pieces) const {
  const size_t original = totalSize(pieces);
  for (const auto& p : steps_) {
    p->preTokenize(pieces);
    checkGrowth(original, totalSize(pieces), "pre-tokenizer");
  }
}

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex)
    : addPrefixSpace_(addPrefixSpace), useRegex_(useRegex) {
  if (useRegex_) regex_ = std::make_unique<Regex>(kGpt2Pattern, "ByteLevel pre-tokenizer regex");
}

void ByteLevelPreTokenizer::preTokenize(std::vector<Piece>& pieces) const {
  splitPieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
    if (addPrefixSpace_ && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, " ");
    if (!useRegex_) {
      if (!p.text.empty()) out.push_back(std::move(p));
      return;
    }
    emitRanges(p, applyBehavior(regex_->findMatches(p.text), SplitBehavior::Isolated), out);
  });
  const ByteLevelNormalizer toBytes;
  for (auto& p : pieces)
    if (p.id < 0) toBytes.normalize(p.text);
}

void SplitPreTokenizer::preTokenize(std::vector<Piece>& pieces) const {
  splitPieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
    std::vector<Span> spans = pattern_->findMatches(p.text);
    if (invert_)
      for (auto& s : spans) s.match = !s.match;
    emitRanges(p, applyBehavior(spans, behavior_), out);
  });
}

DigitsPreTokenizer::DigitsPreTokenizer(bool individual)
    : individual_(individual), numeric_(std::make_unique<Regex>("\\p{N}", "Digits pre-tokenizer")) {}

void DigitsPreTokenizer::preTokenize(std::vector<Piece>& pieces) const {
  splitPieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
    emitRanges(p,
               applyBehavior(numeric_->findMatches(p.text),
                             individual_ ? SplitBehavior::Isolated : SplitBehavior::Contiguous),
               out);
  });
}

void MetaspacePreTokenizer::preTokenize(std::vector<Piece>& pieces) const {
  splitPieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
    std::string text;
    text.reserve(p.text.size() + replacement_.size());
    for (char c : p.text) {
      if (c == ' ') text += replacement_;
      else text += c;
    }
    const bool startsWithRep = text.compare(0, replacement_.size(), replacement_) == 0;
    if (!startsWithRep && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.atStart)))
      text.insert(0, replacement_);
    Piece q{std::move(text), -1, p.atStart};
    if (!split_) {
      if (!q.text.empty()) out.push_back(std::move(q));
      return;
    }
    emitRanges(q, applyBehavior(charSpans(q.text, replacement_), SplitBehavior::MergedWithNext), out);
  });
}

WhitespacePreTokenizer::WhitespacePreTokenizer()
    : regex_(std::make_unique<Regex>("\\w+|[^\\w\\s]+", "Whitespace pre-tokenizer")) {}

void WhitespacePreTokenizer::preTokenize(std::vector<Piece>& pieces) const {
  splitPieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
    std::vector<Span> spans = regex_->findMatches(p.text);
    for (auto& s : spans) s.match = !s.match;
    emitRanges(p, applyBehavior(spans, SplitBehavior::Removed), out);
  });
}

void WhitespaceSplitPreTokenizer::preTokenize(std::vector<Piece>& pieces) const {
  splitPieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
    std::vector<std::pair<size_t, size_t>> ranges;
    size_t start = 0;
    for (size_t pos = 0; pos < p.text.size();) {
      const size_t at = pos;
      if (isWhiteSpace(nextCodePoint(p.text, pos))) {
        ranges.push_back({start, at});
        start = pos;
      }
    }
    ranges.push_back({start, p.text.size()});
    emitRanges(p, ranges, out);
  });
}

// ---- decoders ---------------------------------------------------------------------------------
std::vector<std::string> SequenceDecoder::decodeChain(std::vector<std::string> tokens) const {
  for (const auto& d : steps_) tokens = d->decodeChain(std::move(tokens));
  return tokens;
}

std::vector<std::string> SequenceDecoder::pieceChain(std::vector<std::string> tokens) const {
  for (const auto& d : steps_) tokens = d->pieceChain(std::move(tokens));
  return tokens;
}

std::vector<std::string> ByteLevelDecoder::decodeChain(std::vector<std::string> tokens) const {
  return {replaceInvalidUtf8(pieceChain(std::move(tokens))[0])};
}

std::vector<std::string> ByteLevelDecoder::pieceChain(std::vector<std::string> tokens) const {
  std::string bytes;
  for (const auto& t : tokens) {
    std::string mapped;
    bool all = true;
    for (size_t pos = 0; pos < t.size() && all;) {
      const int b = byteOfChar(nextCodePoint(t, pos));
      if (b < 0) all = false;
      else mapped += static_cast<char>(b);
    }
    bytes += all ? mapped : t;
  }
  return {bytes};
}

std::vector<std::string> ReplaceDecoder::decodeChain(std::vector<std::string> tokens) const {
  for (auto& t : tokens) t = ReplaceNormalizer::apply(*pattern_, content_, t);
  return tokens;
}

std::vector<std::string> ByteFallbackDecoder::decodeChain(std::vector<std::string> tokens) const {
  return run(std::move(tokens), false);
}

std::vector<std::string> ByteFallbackDecoder::pieceChain(std::vector<std::string> tokens) const {
  return run(std::move(tokens), true);
}

std::vector<std::string> ByteFallbackDecoder::run(std::vector<std::string> tokens, bool raw) const {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::string> out;
  std::string pending;
  auto flush = [&] {
    if (pending.empty()) return;
    if (raw || findInvalidUtf8(pending) == kUtf8Valid) out.push_back(pending);
    else
      for (size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
    pending.clear();
  };
  for (auto& t : tokens) {
    int value = -1;
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
      const int h = hex(t[3]), l = hex(t[4]);  // u8::from_str_radix also takes "+N"
      if (h >= 0 && l >= 0) value = h * 16 + l;
      else if (t[3] == '+' && l >= 0) value = l;
    }
    if (value >= 0) {
      pending += static_cast<char>(value);
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  return out;
}

std::vector<std::string> FuseDecoder::decodeChain(std::vector<std::string> tokens) const {
  std::string all;
  for (const auto& t : tokens) all += t;
  return {all};
}

std::vector<std::string> StripDecoder::decodeChain(std::vector<std::string> tokens) const {
  for (auto& t : tokens) {
    std::vector<std::pair<size_t, size_t>> chars;  // (offset, length)
    for (size_t pos = 0; pos < t.size();) {
      const size_t at = pos;
      nextCodePoint(t, pos);
      chars.push_back({at, pos - at});
    }
    auto is = [&](size_t i) { return t.compare(chars[i].first, chars[i].second, content_) == 0; };
    size_t startCut = 0;
    for (size_t i = 0; i < start_ && i < chars.size() && is(i); ++i) startCut = i + 1;
    size_t stopCut = chars.size();
    for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
      const size_t index = chars.size() - i - 1;
      if (!is(index)) break;
      stopCut = index;
    }
    if (stopCut <= startCut) {
      t.clear();
      continue;
    }
    const size_t a = chars[startCut].first;
    const size_t b = stopCut < chars.size() ? chars[stopCut].first : t.size();
    t = t.substr(a, b - a);
  }
  return tokens;
}

std::vector<std::string> MetaspaceDecoder::decodeChain(std::vector<std::string> tokens) const {
  return run(std::move(tokens), true);
}

std::vector<std::string> MetaspaceDecoder::pieceChain(std::vector<std::string> tokens) const {
  return run(std::move(tokens), false);
}

std::vector<std::string> MetaspaceDecoder::run(std::vector<std::string> tokens, bool first) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string out;
    const std::string& t = tokens[i];
    for (size_t pos = 0; pos < t.size();) {
      if (!replacement_.empty() && t.compare(pos, replacement_.size(), replacement_) == 0) {
        if (!(first && i == 0 && scheme_ != PrependScheme::Never)) out += ' ';
        pos += replacement_.size();
        continue;
      }
      out += t[pos++];
    }
    tokens[i] = std::move(out);
  }
  return tokens;
}

std::vector<std::string> BpeSuffixDecoder::decodeChain(std::vector<std::string> tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string repl = i + 1 == tokens.size() ? "" : " ";
    std::string& t = tokens[i];
    if (suffix_.empty()) continue;
    std::string out;
    for (size_t pos = 0; pos < t.size();) {
      if (t.compare(pos, suffix_.size(), suffix_) == 0) {
        out += repl;
        pos += suffix_.size();
      } else {
        out += t[pos++];
      }
    }
    t = std::move(out);
  }
  return tokens;
}

}  // namespace moe::tok
