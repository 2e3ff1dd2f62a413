// The BPE model of a tokenizer: turns one pre-token (a "word") into token ids.
//
// Two merge orders:
//  - by rank (Hugging Face tokenizers' BPE): the word starts as characters (unknown ones become
//    <0xNN> byte tokens with byte_fallback, else the unk token); the adjacent pair with the lowest
//    merge rank is merged first (ties: leftmost), with a priority queue, so a long word costs
//    O(n log n), not O(n^2). ignore_merges looks the whole word up in the vocabulary first.
//  - by score (SentencePiece BPE as llama.cpp's llm_tokenizer_spm runs it for GGUF files, which
//    carry per-token scores, not merges): the adjacent pair whose concatenation is a token with
//    the highest score is merged first (ties: leftmost); symbols that are not tokens at the end are
//    emitted as <0xNN> byte tokens.
// Results are cached per word (thread-safe), as tokenizers does.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace moe::tok {

class Vocab {
 public:
  // `entries`: (token, id) pairs; ids must be >= 0. A token listed twice keeps its last id.
  explicit Vocab(std::vector<std::pair<std::string, int32_t>> entries);
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  std::optional<int32_t> find(std::string_view token) const;
  std::optional<std::string_view> token(int32_t id) const;
  size_t size() const { return byToken_.size(); }   // distinct tokens, as tokenizers' vocab.len()
  int32_t maxId() const { return maxId_; }

 private:
  std::vector<std::string> storage_;  // fixed after construction: the views below point into it
  std::unordered_map<std::string_view, int32_t> byToken_;
  std::unordered_map<int32_t, std::string_view> byId_;
  int32_t maxId_ = -1;
};

struct BpeOptions {
  std::optional<std::string> unkToken;
  bool byteFallback = false;
  bool fuseUnk = false;
  bool ignoreMerges = false;
  std::string continuingSubwordPrefix;
  std::string endOfWordSuffix;
};

class Bpe {
 public:
  // Rank order. Throws moe::Error naming `what` (file and field) for a merge whose tokens or
  // concatenation are not in the vocabulary.
  Bpe(std::vector<std::pair<std::string, int32_t>> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options, const std::string& what);
  // Score order: scores[id] for every id in the vocabulary (missing ids score -inf).
  Bpe(std::vector<std::pair<std::string, int32_t>> vocab, std::vector<float> scores, std::optional<int32_t> unkId,
      const std::string& what);

  // Appends the ids of `word` (not empty) to `out`.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  const Vocab& vocab() const { return vocab_; }

 private:
  std::vector<int32_t> mergeByRank(std::string_view word) const;
  std::vector<int32_t> mergeByScore(std::string_view word) const;

  Vocab vocab_;
  bool byScore_ = false;
  BpeOptions options_;
  std::string what_;
  // (left id, right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<uint32_t, int32_t>> merges_;
  std::vector<float> scores_;
  std::optional<int32_t> unkId_;
  int32_t byteIds_[256];  // <0xNN> token ids, -1 where absent

  mutable std::mutex cacheMutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace moe::tok
