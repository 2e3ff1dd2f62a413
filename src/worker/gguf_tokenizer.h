// Tokenizers from GGUF metadata (tokenizer.ggml.*), read as llama.cpp reads them (llama-vocab.cpp),
// turned into a TokenizerSpec and built with Tokenizer::fromSpec.
//
//   tokenizer.ggml.model   "gpt2"  -> byte-level BPE: tokens + merges ("left right", by rank), split
//                                     first by the regexes llama.cpp picks for tokenizer.ggml.pre
//                                     (ggufPreTokenizer); absent pre = "default", as llama.cpp
//                          "llama" -> SentencePiece BPE: tokens + scores (the pair whose merged
//                                     piece scores highest is merged first), "▁" for spaces,
//                                     <0xNN> byte fallback
//                          anything else is refused, naming the value
//   tokenizer.ggml.tokens / scores / token_type / merges    arrays; scores and token_type, where
//                          present, have one entry per token
//   tokenizer.ggml.bos_token_id / eos_token_id / unknown_token_id   ids inside the vocabulary;
//                          for "llama" absent ones default to 1 / 2 / 0 when those ids exist (as
//                          llama.cpp)
//   tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix   flags; absent ones take
//                          llama.cpp's defaults: "llama" adds BOS and a space prefix; "gpt2" adds
//                          BOS only for the Llama 3 pre-tokenizers; nothing adds EOS
// Token types: CONTROL and UNKNOWN tokens are matched in the text as special tokens, USER_DEFINED
// ones as plain added tokens (Hugging Face's added_tokens; llama.cpp with parse_special).
//
// Every error names the GGUF file and the key (and the index inside an array), e.g. a file without
// tokenizer.ggml.tokens, an unknown model or pre-tokenizer, arrays whose lengths differ from the
// token count, a merge that names a token not in the vocabulary, an id outside it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "worker/tokenizer.h"

namespace moe {

class GgufFile;

// What llama.cpp does for one tokenizer.ggml.pre value of a "gpt2" tokenizer.
struct GgufPreTokenizer {
  std::vector<std::string> regexes;  // applied in order (matches and the text between them kept)
  bool ignoreMerges = false;         // look a whole pre-token up before merging
  bool addBos = false;               // llama.cpp's default for add_bos_token
};

// nullopt for a value this reader does not know.
std::optional<GgufPreTokenizer> ggufPreTokenizer(const std::string& pre);
// The known tokenizer.ggml.pre values, comma separated (for messages and docs).
std::string ggufPreTokenizerNames();

// The tokenizer a GGUF file describes, as a spec (name: the file's name).
TokenizerSpec tokenizerSpecFromGguf(const GgufFile& file);
std::unique_ptr<Tokenizer> tokenizerFromGguf(const GgufFile& file);
// Maps `path` (only the metadata is read) and builds its tokenizer.
std::unique_ptr<Tokenizer> tokenizerFromGguf(const std::string& path);

}  // namespace moe
