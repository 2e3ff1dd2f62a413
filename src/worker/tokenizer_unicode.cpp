// NFC/NFD follow UAX #15: full canonical decomposition (table + algorithmic Hangul), canonical
// ordering by combining class, then canonical composition of primary composites.
#include "worker/tokenizer_unicode.h"

#include <algorithm>
#include <vector>

#include "common/utf8.h"

namespace moe::tok {
namespace {

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

uint8_t combiningClass(uint32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + kCombiningClassesSize;
  const auto* it = std::lower_bound(kCombiningClasses, end, cp,
                                    [](const CombiningClass& c, uint32_t v) { return c.cp < v; });
  return it != end && it->cp == cp ? it->ccc : 0;
}

const Decomposition* findDecomposition(uint32_t cp) {
  const auto* end = kDecompositions + kDecompositionsSize;
  const auto* it = std::lower_bound(kDecompositions, end, cp,
                                    [](const Decomposition& d, uint32_t v) { return d.cp < v; });
  return it != end && it->cp == cp ? it : nullptr;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (const Decomposition* d = cp >= 0xC0 ? findDecomposition(cp) : nullptr) {
    decompose(d->first, out);
    if (d->second) decompose(d->second, out);
    return;
  }
  out.push_back(cp);
}

// Returns 0 when (a, b) has no primary composite.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = kCompositions + kCompositionsSize;
  const auto* it = std::lower_bound(kCompositions, end, std::make_pair(a, b),
                                    [](const Composition& c, const std::pair<uint32_t, uint32_t>& v) {
                                      return c.first != v.first ? c.first < v.first : c.second < v.second;
                                    });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

std::vector<uint32_t> decomposeAll(std::string_view s) {
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) decompose(nextCodePoint(s, pos), cps);
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (combiningClass(cps[i]) == 0) { ++i; continue; }
    size_t j = i;
    while (j < cps.size() && combiningClass(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [](uint32_t x, uint32_t y) { return combiningClass(x) < combiningClass(y); });
    i = j;
  }
  return cps;
}

std::string encode(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) appendUtf8(out, cp);
  return out;
}

// True when no code point is >= U+0300: such text is its own NFC and NFD... except for
// precomposed Latin-1 letters under NFD, so only the NFC fast path uses it.
bool below0300(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0xCC) return false;
  return true;
}

}  // namespace

uint32_t nextCodePoint(std::string_view s, size_t& pos) {
  size_t len = 1;
  const int32_t cp = decodeUtf8(s, pos, len);
  pos += len;
  return cp < 0 ? 0xFFFD : static_cast<uint32_t>(cp);
}

std::string replaceInvalidUtf8(std::string_view s) {
  if (findInvalidUtf8(s) == kUtf8Valid) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) { out += static_cast<char>(c); ++i; continue; }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else { out += "\xEF\xBF\xBD"; ++i; continue; }  // 80..C1, F5..FF: one U+FFFD each
    size_t got = 0;
    while (got < need && i + 1 + got < n) {
      const unsigned char t = p[i + 1 + got];
      const bool ok = got == 0 ? (t >= lo && t <= hi) : (t >= 0x80 && t <= 0xBF);
      if (!ok) break;
      ++got;
    }
    if (got == need) out.append(s.data() + i, need + 1);
    else out += "\xEF\xBF\xBD";  // the maximal subpart: lead byte plus the valid continuations
    i += 1 + got;
  }
  return out;
}

std::string nfd(std::string_view s) {
  bool ascii = true;
  for (unsigned char c : s) ascii = ascii && c < 0x80;
  if (ascii) return std::string(s);
  return encode(decomposeAll(s));
}

std::string nfc(std::string_view s) {
  if (below0300(s)) return std::string(s);
  std::vector<uint32_t> cps = decomposeAll(s);
  // Canonical composition: each character is combined with the last starter when it is not
  // blocked (no character in between with a class of zero or >= its own).
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  long starter = -1;
  uint8_t lastClass = 0;
  for (uint32_t cp : cps) {
    const uint8_t cc = combiningClass(cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<size_t>(starter) + 1 == out.size();
      if (adjacent || (lastClass != 0 && lastClass < cc)) {
        if (uint32_t c = compose(out[starter], cp)) {
          out[starter] = c;
          continue;
        }
      }
    }
    if (cc == 0) {
      starter = static_cast<long>(out.size());
      lastClass = 0;
    } else {
      lastClass = cc;
    }
    out.push_back(cp);
  }
  return encode(out);
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[pos]);
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
      ++pos;
      continue;
    }
    const uint32_t cp = nextCodePoint(s, pos);
    const auto* end = kLowercase + kLowercaseSize;
    const auto* it = std::lower_bound(kLowercase, end, cp,
                                      [](const LowercaseMapping& m, uint32_t v) { return m.cp < v; });
    if (it != end && it->cp == cp) {
      appendUtf8(out, it->first);
      if (it->second) appendUtf8(out, it->second);
    } else {
      appendUtf8(out, cp);
    }
  }
  return out;
}

bool isWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

}  // namespace moe::tok
