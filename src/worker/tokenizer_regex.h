// Regular expressions for tokenizer patterns: PCRE2 in UTF + UCP mode, with the match iteration
// and Unicode classes of the Oniguruma engine that Hugging Face tokenizers uses.
//
// Differences bridged: \s / \S are rewritten to \p{White_Space} / \P{White_Space} (Oniguruma's \s
// includes U+0085, PCRE2's does not) and \w to Alphabetic|M|Nd|Pc|Join_Control (Oniguruma's word).
// Iteration follows the `onig` crate's find_iter: an empty match right after the previous match is
// skipped by advancing one character. Matching runs with a match limit so that a hostile pattern in
// a tokenizer file ends in moe::Error instead of running for hours.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moe::tok {

struct Span {
  size_t start, end;
  bool match;
};

class Regex {
 public:
  // `what` names the pattern in error messages (file and field).
  Regex(const std::string& pattern, const std::string& what, bool caseless = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Spans covering all of `s` in order: the matches (match = true) and the text between them, as
  // tokenizers' Pattern::find_matches. An empty `s` gives one empty non-match span.
  std::vector<Span> findMatches(std::string_view s) const;
  const std::string& pattern() const { return pattern_; }

  // Escapes `s` so that it matches literally.
  static std::string escape(std::string_view s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string pattern_;
  std::string what_;
};

}  // namespace moe::tok
