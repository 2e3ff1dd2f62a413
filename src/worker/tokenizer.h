// Tokenizers of the models moe-dist evaluates: an own implementation of Hugging Face
// `tokenizer.json` (BPE family) whose token ids equal those of the Python `tokenizers` library, and
// the same machinery built from a TokenizerSpec, the form in which GGUF files carry a tokenizer.
//
// Encoding follows tokenizers' pipeline (tokenizers/src/tokenizer/mod.rs):
//   1. added tokens (`added_tokens`) are split out of the raw text, longest match first, honouring
//      single_word / lstrip / rstrip; those with normalized=true are matched in step 2 instead;
//   2. every other piece is normalized (Sequence, Prepend, Replace, NFC, NFD, Lowercase, Strip,
//      ByteLevel);
//   3. pre-tokenized (Sequence, ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit;
//      regexes run on PCRE2 with Oniguruma's classes, see tokenizer_regex.h);
//   4. each pre-token is encoded by the BPE model (merge ranks, ignore_merges, byte_fallback,
//      unk/fuse_unk, continuing_subword_prefix, end_of_word_suffix);
//   5. with addSpecial, the post-processor adds its special tokens (TemplateProcessing's single
//      template; ByteLevel and Sequence of these).
// Any other component type is refused at load with an error naming the file, the field and the
// type. `truncation` and `padding` in tokenizer.json are ignored: moe-dist wants whole prompts.
//
// Text is UTF-8. Invalid UTF-8 cannot reach the Rust library (its Python binding refuses it), so
// encode() first replaces each maximal invalid subsequence with U+FFFD, exactly as Python's
// bytes.decode("utf-8", errors="replace"); the ids equal Python's ids for the replaced text.
//
// tokenizer_config.json beside tokenizer.json (optional) names bos_token / eos_token (bosId(),
// eosId()). Its add_bos_token / add_eos_token add BOS / EOS only when tokenizer.json has no
// TemplateProcessing (the template, where present, decides, as in the Python library; a config
// that disagrees with it is reported as a warning). Without a config, BOS / EOS are the template's
// special tokens before / after the sequence.
//
// A Tokenizer is immutable after construction; encode() and decode() may run on several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe {

// GGUF's token types (tokenizer.ggml.token_type), same numbering.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,      // special tokens such as <s>: matched in text as special added tokens
  UserDefined = 4,  // added tokens: matched in text as (non-special) added tokens
  Unused = 5,
  Byte = 6,  // <0xNN>
};

enum class TokenizerKind {
  ByteLevelBpe,      // GPT-2 / Llama 3 / Qwen2 style: byte characters, merges by rank
  SentencePieceBpe,  // Llama 2 / Mistral style: "▁" for spaces, merges by score, <0xNN> bytes
};

// A tokenizer given as arrays, as GGUF metadata carries it (tokenizer.ggml.*):
//   kind             tokenizer.ggml.model: "gpt2" -> ByteLevelBpe, "llama" -> SentencePieceBpe
//   tokens           tokenizer.ggml.tokens: the piece of each id (byte-level pieces use GPT-2's
//                    byte characters, e.g. "Ġthe"; sentencepiece pieces use "▁")
//   scores           tokenizer.ggml.scores: SentencePieceBpe merges the adjacent pair whose merged
//                    piece has the highest score (llama.cpp's llm_tokenizer_spm); one per token
//   types            tokenizer.ggml.token_type: one per token, or empty (all Normal)
//   merges           tokenizer.ggml.merges split at the space: ByteLevelBpe merges by rank
//   preTokenizerRegexes  ByteLevelBpe: regexes applied in order, each splitting every piece into
//                    matches and the text between them (llama.cpp's unicode_regex_split); empty =
//                    GPT-2's regex. llama.cpp picks them by tokenizer.ggml.pre ("llama-bpe", ...).
//   ignoreMerges     ByteLevelBpe: look a whole pre-token up before merging (llama.cpp sets it
//                    for "llama-bpe")
//   addBos, addEos   tokenizer.ggml.add_bos_token / add_eos_token: what encode(text, true) adds
//   addSpacePrefix   SentencePieceBpe: tokenizer.ggml.add_space_prefix (a "▁" before each text
//                    piece)
//   bosId, eosId, unkId  tokenizer.ggml.bos_token_id / eos_token_id / unknown_token_id
struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::ByteLevelBpe;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<std::string> preTokenizerRegexes;
  bool ignoreMerges = false;
  bool addBos = false;
  bool addEos = false;
  bool addSpacePrefix = true;
  std::optional<int32_t> bosId, eosId, unkId;
  std::string name = "tokenizer spec";  // names the source in error messages (e.g. the GGUF file)
};

class Tokenizer {
 public:
  // Reads tokenizer.json, and tokenizer_config.json from the same folder if present. Throws
  // moe::Error naming the file and field for malformed JSON (with the parse position), missing
  // model/vocab/merges, a merge naming an unknown token, or an unsupported component type.
  static std::unique_ptr<Tokenizer> fromFile(const std::string& tokenizerJsonPath);
  // `dir`/tokenizer.json (+ tokenizer_config.json).
  static std::unique_ptr<Tokenizer> fromModelFolder(const std::string& dir);
  // From the text of a tokenizer.json (and optionally of a tokenizer_config.json); `name` stands
  // for the file in error messages.
  static std::unique_ptr<Tokenizer> fromJsonString(std::string_view tokenizerJson, const std::string& name,
                                                   std::optional<std::string_view> configJson = std::nullopt);
  // From arrays (GGUF). Throws moe::Error naming spec.name for inconsistent arrays or ids.
  static std::unique_ptr<Tokenizer> fromSpec(const TokenizerSpec& spec);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`; addSpecial: also the post-processor's special tokens (BOS etc.), as the
  // Python library's encode(text, add_special_tokens=True).
  std::vector<int32_t> encode(std::string_view text, bool addSpecial = true) const;
  // Text of `ids` through the tokenizer's decoder (ids it does not know are skipped, as in Python);
  // skipSpecial drops special added tokens (Python's decode defaults to skip_special_tokens=True).
  std::string decode(const std::vector<int32_t>& ids, bool skipSpecial = false) const;
  // Readable text of one token for listings: an added token's content, else the decoder's byte/▁
  // mappings without the sequence-level stripping; bytes that are not whole UTF-8 characters
  // print as <0xNN>.
  std::string pieceText(int32_t id) const;

  // The vocabulary piece of `id` (as Python's id_to_token). Throws moe::Error for an unknown id.
  std::string idToToken(int32_t id) const;
  std::optional<int32_t> tokenToId(std::string_view piece) const;
  // One more than the largest id of the model vocabulary and the added tokens.
  int32_t vocabSize() const;
  bool isSpecial(int32_t id) const;  // a special added token (<s>, <|endoftext|>, ...)

  std::optional<int32_t> bosId() const;
  std::optional<int32_t> eosId() const;
  std::optional<int32_t> unkId() const;
  // The special ids encode(text, true) puts before and after the text.
  const std::vector<int32_t>& specialPrefix() const;
  const std::vector<int32_t>& specialSuffix() const;
  const std::string& name() const;  // the tokenizer.json path (or spec name)

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe
