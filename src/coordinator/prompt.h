// Few-shot MMLU prompts, byte for byte as the reference implementations build them.
//
// Style `original` (default) reproduces hendrycks/test evaluate.py:
//   "The following are multiple choice questions (with answers) about" + format_subject(s) + ".\n\n"
// where format_subject puts a space before every `_`-separated word (so `abstract_algebra` gives
// "about  abstract algebra." with two spaces), then per dev example
//   question + "\nA. " + choice0 + "\nB. " + choice1 ... + "\nAnswer:" + " " + letter + "\n\n"
// and last the asked question the same way, ending at "Answer:".
// Style `harness` reproduces lm-evaluation-harness's default `mmlu` task: the header has one space
// ("about abstract algebra."), and every question text (examples and the asked one) is stripped of
// surrounding whitespace as Python's str.strip() does; the rest is identical.
//
// Shots are the first k rows of the subject's dev file, in file order. When the evaluated split is
// dev itself, the asked question is skipped among them (the next dev row takes its place), so a
// question is never its own example. With fewer rows than k, all there are are used.
//
// A prompt is kept as a shared prefix (header + shots; the same for every question of a subject
// with the same shots, except on the dev split) and the question part, so a prefix cache can
// compute the prefix once.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "coordinator/mmlu.h"

namespace moe {

enum class PromptStyle { Original, Harness };

// "original" | "harness"; parsePromptStyle throws moe::Error for anything else.
const char* promptStyleName(PromptStyle style);
PromptStyle parsePromptStyle(const std::string& name);

struct Prompt {
  std::string prefix;    // header + the few-shot examples
  std::string question;  // the asked question, ending at "Answer:"
  int shots = 0;         // examples actually in the prefix
  bool fits = true;      // fitPrompt: false when even 0 shots exceed the limit (text is the 0-shot prompt)
  std::string text() const { return prefix + question; }
};

// "The following are multiple choice questions (with answers) about {subject}.\n\n".
std::string promptHeader(const std::string& subject, PromptStyle style);

// One question block: text, "\nX. choice" lines, "\nAnswer:", and with `withAnswer` " X\n\n".
std::string formatQuestion(const Question& q, PromptStyle style, bool withAnswer);

// The dev rows used as examples for `q`: the first `shots` of `subject.dev`, skipping `q` itself
// when it is a dev row.
std::vector<const Question*> selectShots(const SubjectData& subject, const Question& q, int shots);

// The prompt for `q` with up to `shots` examples.
Prompt buildPrompt(const SubjectData& subject, const Question& q, int shots, PromptStyle style);

// As buildPrompt, then, while countTokens(text) > maxTokens, drops the last example, one at a time
// (as evaluate.py does). `fits` is false when the 0-shot prompt is still too long; the caller
// decides what to do with it.
Prompt fitPrompt(const SubjectData& subject, const Question& q, int shots, PromptStyle style,
                 const std::function<size_t(const std::string&)>& countTokens, size_t maxTokens);

// Python's str.strip(): removes leading and trailing Unicode whitespace (str.isspace) from UTF-8.
std::string pythonStrip(const std::string& s);

}  // namespace moe
