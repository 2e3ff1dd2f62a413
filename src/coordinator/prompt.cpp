#include "coordinator/prompt.h"

#include "common/error.h"
#include "common/utf8.h"

namespace moe {
namespace {

// Python's str.isspace() for one code point (Unicode White_Space as CPython defines it).
bool isPythonSpace(int32_t cp) {
  if (cp < 0) return false;
  if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20)) return true;
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string questionText(const Question& q, PromptStyle style) {
  return style == PromptStyle::Harness ? pythonStrip(q.question) : q.question;
}

}  // namespace

const char* promptStyleName(PromptStyle style) {
  switch (style) {
    case PromptStyle::Original: return "original";
    case PromptStyle::Harness: return "harness";
  }
  MOE_THROW("invalid prompt style value ", static_cast<int>(style));
}

PromptStyle parsePromptStyle(const std::string& name) {
  if (name == "original") return PromptStyle::Original;
  if (name == "harness") return PromptStyle::Harness;
  MOE_THROW("unknown prompt style '", name, "': expected original or harness");
}

std::string pythonStrip(const std::string& s) {
  size_t begin = s.size(), end = 0, pos = 0;
  while (pos < s.size()) {
    size_t len = 1;
    const int32_t cp = decodeUtf8(s, pos, len);
    if (!isPythonSpace(cp)) {
      if (begin == s.size()) begin = pos;
      end = pos + len;
    }
    pos += len;
  }
  return begin < end ? s.substr(begin, end - begin) : std::string();
}

std::string promptHeader(const std::string& subject, PromptStyle style) {
  // evaluate.py's format_subject puts a space before every word; the harness joins them with one.
  std::string words;
  size_t start = 0;
  for (;;) {
    const size_t us = subject.find('_', start);
    const std::string word = subject.substr(start, us == std::string::npos ? std::string::npos : us - start);
    if (style == PromptStyle::Original)
      words += " " + word;
    else
      words += (start == 0 ? "" : " ") + word;
    if (us == std::string::npos) break;
    start = us + 1;
  }
  return "The following are multiple choice questions (with answers) about " + words + ".\n\n";
}

std::string formatQuestion(const Question& q, PromptStyle style, bool withAnswer) {
  std::string out = questionText(q, style);
  for (size_t j = 0; j < q.choices.size(); ++j) {
    out += '\n';
    out += choiceLetter(static_cast<int>(j));
    out += ". ";
    out += q.choices[j];
  }
  out += "\nAnswer:";
  if (withAnswer) {
    out += ' ';
    out += choiceLetter(q.gold);
    out += "\n\n";
  }
  return out;
}

std::vector<const Question*> selectShots(const SubjectData& subject, const Question& q, int shots) {
  std::vector<const Question*> out;
  const bool fromDev = q.split == "dev";
  for (const Question& d : subject.dev) {
    if (static_cast<int>(out.size()) >= shots) break;
    if (fromDev && d.index == q.index) continue;
    out.push_back(&d);
  }
  return out;
}

Prompt buildPrompt(const SubjectData& subject, const Question& q, int shots, PromptStyle style) {
  MOE_CHECK(shots >= 0, "shots must be >= 0, got ", shots);
  Prompt p;
  p.prefix = promptHeader(subject.info.subject, style);
  for (const Question* d : selectShots(subject, q, shots)) {
    p.prefix += formatQuestion(*d, style, true);
    ++p.shots;
  }
  p.question = formatQuestion(q, style, false);
  return p;
}

Prompt fitPrompt(const SubjectData& subject, const Question& q, int shots, PromptStyle style,
                 const std::function<size_t(const std::string&)>& countTokens, size_t maxTokens) {
  const std::vector<const Question*> examples = selectShots(subject, q, shots);
  const std::string header = promptHeader(subject.info.subject, style);
  std::vector<std::string> blocks;
  blocks.reserve(examples.size());
  for (const Question* d : examples) blocks.push_back(formatQuestion(*d, style, true));

  Prompt p;
  p.question = formatQuestion(q, style, false);
  for (size_t k = blocks.size() + 1; k-- > 0;) {
    p.prefix = header;
    for (size_t i = 0; i < k; ++i) p.prefix += blocks[i];
    p.shots = static_cast<int>(k);
    if (countTokens(p.text()) <= maxTokens) return p;
  }
  p.fits = false;  // the loop ended at k = 0: the 0-shot prompt does not fit either
  return p;
}

}  // namespace moe
