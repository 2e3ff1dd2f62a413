#include "worker/tokenizer_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"
#include "common/utf8.h"

namespace moe::tok {
namespace {

constexpr uint32_t kMatchLimit = 5'000'000;
constexpr const char* kWordClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";

// Rewrites \s, \S, \w (and \W outside classes) as described in the header; everything else is kept.
std::string translate(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 16);
  bool inClass = false;
  size_t classStart = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      ++i;
      if (n == 's') out += "\\p{White_Space}";
      else if (n == 'S') out += "\\P{White_Space}";
      else if (n == 'w') out += inClass ? std::string(kWordClass) : "[" + std::string(kWordClass) + "]";
      else if (n == 'W' && !inClass) out += "[^" + std::string(kWordClass) + "]";
      else if (n == 'Q') {  // \Q...\E is literal: copy through unchanged
        out += "\\Q";
        const size_t e = p.find("\\E", i + 1);
        const size_t stop = e == std::string::npos ? p.size() : e + 2;
        out.append(p, i + 1, stop - (i + 1));
        i = stop - 1;
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    if (!inClass && c == '[') {
      inClass = true;
      classStart = i;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') { out += '^'; ++i; }
      if (i + 1 < p.size() && p[i + 1] == ']') { out += ']'; ++i; }  // a leading ] is literal
      continue;
    }
    if (inClass && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      const size_t e = p.find(":]", i + 2);
      if (e != std::string::npos) {
        out.append(p, i, e + 2 - i);
        i = e + 1;
        continue;
      }
    }
    if (inClass && c == ']' && i > classStart) inClass = false;
    out += c;
  }
  return out;
}

std::string pcreMessage(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

struct Regex::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  bool jit = false;
  ~Impl() {
    if (context) pcre2_match_context_free(context);
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern, const std::string& what, bool caseless)
    : impl_(std::make_unique<Impl>()), pattern_(pattern), what_(what) {
  const std::string translated = translate(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK;
  if (caseless) options |= PCRE2_CASELESS;
  MOE_CHECK(findInvalidUtf8(pattern) == kUtf8Valid, what, ": the regex is not valid UTF-8");
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options,
                              &err, &offset, nullptr);
  MOE_CHECK(impl_->code, what, ": invalid regex '", pattern, "': ", pcreMessage(err), " (at offset ", offset,
            " of the translated pattern)");
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
  impl_->context = pcre2_match_context_create(nullptr);
  MOE_CHECK(impl_->context, what, ": out of memory creating a regex match context");
  pcre2_set_match_limit(impl_->context, kMatchLimit);
  pcre2_set_depth_limit(impl_->context, kMatchLimit);
}

Regex::~Regex() = default;

std::vector<Span> Regex::findMatches(std::string_view s) const {
  std::vector<Span> spans;
  if (s.empty()) {
    spans.push_back({0, 0, false});
    return spans;
  }
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  MOE_CHECK(md, what_, ": out of memory creating regex match data");
  struct Free {
    pcre2_match_data* m;
    ~Free() { pcre2_match_data_free(m); }
  } freeMd{md};
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t prev = 0, lastEnd = 0;
  bool haveLastMatch = false;
  size_t lastMatchEnd = 0;
  while (lastEnd <= s.size()) {
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, s.size(), lastEnd, PCRE2_NO_UTF_CHECK, md,
                                                impl_->context)
                              : pcre2_match(impl_->code, subject, s.size(), lastEnd, PCRE2_NO_UTF_CHECK, md,
                                            impl_->context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // deep recursion: the interpreter keeps its frames on the heap
      rc = pcre2_match(impl_->code, subject, s.size(), lastEnd, PCRE2_NO_UTF_CHECK, md, impl_->context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    MOE_CHECK(rc >= 0, what_, ": matching regex '", pattern_, "' failed: ", pcreMessage(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t start = ov[0], end = ov[1];
    if (start > end || end > s.size()) break;  // \K tricks; treat as no further matches
    if (start == end && haveLastMatch && lastMatchEnd == end) {
      // Skip an empty match right after the previous one: advance one character.
      if (lastEnd >= s.size()) break;
      size_t step = 1;
      while (lastEnd + step < s.size() && (static_cast<unsigned char>(s[lastEnd + step]) & 0xC0) == 0x80) ++step;
      lastEnd += step;
      continue;
    }
    lastEnd = end;
    haveLastMatch = true;
    lastMatchEnd = end;
    if (start < prev) start = prev;  // cannot happen for a plain regex; keeps spans ordered
    if (prev != start) spans.push_back({prev, start, false});
    spans.push_back({start, end, true});
    prev = end;
  }
  if (prev != s.size()) spans.push_back({prev, s.size(), false});
  return spans;
}

std::string Regex::escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) {
      if (c == '\0') { out += "\\x{0}"; continue; }
      out += '\\';
    }
    out += c;
  }
  return out;
}

}  // namespace moe::tok
