#include "worker/bpe.h"

#include <cstdio>
#include <limits>
#include <queue>

#include "common/error.h"

namespace moe::tok {
namespace {

constexpr size_t kCacheMaxEntries = 200000;
constexpr size_t kCacheMaxWordBytes = 256;  // tokenizers' MAX_LENGTH

uint64_t pairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

size_t charLen(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

std::string byteToken(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}

}  // namespace

Vocab::Vocab(std::vector<std::pair<std::string, int32_t>> entries) {
  storage_.reserve(entries.size());
  for (auto& e : entries) storage_.push_back(std::move(e.first));
  byToken_.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const int32_t id = entries[i].second;
    byToken_[storage_[i]] = id;
  }
  // The reverse map from the final token->id map, so that a token listed twice maps back once.
  for (const auto& [tok, id] : byToken_) {
    auto it = byId_.find(id);
    if (it == byId_.end() || tok < it->second) byId_[id] = tok;  // deterministic choice
    if (id > maxId_) maxId_ = id;
  }
}

std::optional<int32_t> Vocab::find(std::string_view token) const {
  auto it = byToken_.find(token);
  if (it == byToken_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> Vocab::token(int32_t id) const {
  auto it = byId_.find(id);
  if (it == byId_.end()) return std::nullopt;
  return it->second;
}

Bpe::Bpe(std::vector<std::pair<std::string, int32_t>> vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options, const std::string& what)
    : vocab_(std::move(vocab)), options_(std::move(options)), what_(what) {
  const size_t prefixLen = options_.continuingSubwordPrefix.size();
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab_.find(a);
    MOE_CHECK(ia, what, ": merge ", rank, " ('", a, "' '", b, "') names '", a, "', which is not in the vocabulary");
    auto ib = vocab_.find(b);
    MOE_CHECK(ib, what, ": merge ", rank, " ('", a, "' '", b, "') names '", b, "', which is not in the vocabulary");
    MOE_CHECK(b.size() >= prefixLen, what, ": merge ", rank, " ('", a, "' '", b,
              "'): the right part is shorter than continuing_subword_prefix");
    const std::string merged = a + b.substr(prefixLen);
    auto im = vocab_.find(merged);
    MOE_CHECK(im, what, ": merge ", rank, " ('", a, "' '", b, "') makes '", merged,
              "', which is not in the vocabulary");
    merges_[pairKey(*ia, *ib)] = {static_cast<uint32_t>(rank), *im};  // a repeated pair keeps its last rank
  }
  for (int b = 0; b < 256; ++b) byteIds_[b] = vocab_.find(byteToken(static_cast<unsigned char>(b))).value_or(-1);
}

Bpe::Bpe(std::vector<std::pair<std::string, int32_t>> vocab, std::vector<float> scores, std::optional<int32_t> unkId,
         const std::string& what)
    : vocab_(std::move(vocab)), byScore_(true), what_(what), scores_(std::move(scores)), unkId_(unkId) {
  for (int b = 0; b < 256; ++b) byteIds_[b] = vocab_.find(byteToken(static_cast<unsigned char>(b))).value_or(-1);
}

void Bpe::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (!byScore_ && options_.ignoreMerges) {
    if (auto id = vocab_.find(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() < kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = byScore_ ? mergeByScore(word) : mergeByRank(word);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

std::vector<int32_t> Bpe::mergeByRank(std::string_view w) const {
  struct Symbol {
    int32_t id;
    long prev, next;
    bool removed;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(w.size());
  auto add = [&](int32_t id) {
    const long idx = static_cast<long>(symbols.size());
    if (idx > 0) symbols.back().next = idx;
    symbols.push_back({id, idx - 1, -1, false});
  };
  int32_t unk = -1;  // pending unknown-token id (fuse_unk extends it)
  auto unkId = [&]() -> int32_t {
    auto id = vocab_.find(*options_.unkToken);
    MOE_CHECK(id, what_, ": unk_token '", *options_.unkToken, "' is not in the vocabulary");
    return *id;
  };
  std::string s;
  for (size_t i = 0; i < w.size();) {
    const size_t len = std::min(charLen(static_cast<unsigned char>(w[i])), w.size() - i);
    const bool first = i == 0, last = i + len == w.size();
    s.assign(w.data() + i, len);
    if (!first) s.insert(0, options_.continuingSubwordPrefix);
    if (last) s += options_.endOfWordSuffix;
    i += len;
    if (auto id = vocab_.find(s)) {
      if (unk >= 0) { add(unk); unk = -1; }
      add(*id);
      continue;
    }
    if (options_.byteFallback) {
      bool all = true;
      for (unsigned char b : s) all = all && byteIds_[b] >= 0;
      if (all) {
        // tokenizers emits these without flushing a pending unk first.
        for (unsigned char b : s) add(byteIds_[b]);
        continue;
      }
    }
    if (options_.unkToken) {
      if (unk >= 0 && options_.fuseUnk) continue;
      if (unk >= 0) add(unk);
      unk = unkId();
    }
    // No unk token: the character is dropped, as tokenizers does.
  }
  if (unk >= 0) add(unk);

  struct Merge {
    long pos;
    uint32_t rank;
    int32_t newId;
    bool operator<(const Merge& o) const {  // priority_queue is a max-heap: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  auto lookup = [&](int32_t a, int32_t b) -> const std::pair<uint32_t, int32_t>* {
    auto it = merges_.find(pairKey(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::priority_queue<Merge> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (auto m = lookup(symbols[i].id, symbols[i + 1].id)) queue.push({static_cast<long>(i), m->first, m->second});
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.removed || cur.next < 0) continue;
    const Symbol right = symbols[cur.next];
    auto m = lookup(cur.id, right.id);
    if (!m || m->second != top.newId) continue;  // stale entry
    symbols[cur.next].removed = true;
    cur.id = top.newId;
    cur.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0)
      if (auto pm = lookup(symbols[cur.prev].id, cur.id)) queue.push({cur.prev, pm->first, pm->second});
    if (cur.next >= 0)
      if (auto nm = lookup(cur.id, symbols[cur.next].id)) queue.push({top.pos, nm->first, nm->second});
  }
  std::vector<int32_t> ids;
  for (const auto& sym : symbols)
    if (!sym.removed) ids.push_back(sym.id);
  return ids;
}

std::vector<int32_t> Bpe::mergeByScore(std::string_view text) const {
  struct Symbol {
    size_t start, n;
    long prev, next;
  };
  std::vector<Symbol> symbols;
  for (size_t offs = 0; offs < text.size();) {
    const size_t n = std::min(charLen(static_cast<unsigned char>(text[offs])), text.size() - offs);
    const long idx = static_cast<long>(symbols.size());
    offs += n;
    symbols.push_back({offs - n, n, idx - 1, offs == text.size() ? -1 : idx + 1});
  }
  struct Bigram {
    long left, right;
    float score;
    size_t size;
    bool operator<(const Bigram& o) const {  // highest score first, then leftmost
      return score < o.score || (score == o.score && left > o.left);
    }
  };
  std::priority_queue<Bigram> queue;
  auto scoreOf = [&](int32_t id) {
    return static_cast<size_t>(id) < scores_.size() ? scores_[id] : -std::numeric_limits<float>::infinity();
  };
  auto tryAdd = [&](long left, long right) {
    if (left < 0 || right < 0) return;
    const std::string_view piece = text.substr(symbols[left].start, symbols[left].n + symbols[right].n);
    auto id = vocab_.find(piece);
    if (!id) return;
    queue.push({left, right, scoreOf(*id), piece.size()});
  };
  for (long i = 1; i < static_cast<long>(symbols.size()); ++i) tryAdd(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    tryAdd(l.prev, b.left);
    tryAdd(b.left, l.next);
  }
  // A merged symbol is always a token (only pairs forming tokens are merged); a character that is
  // not one becomes <0xNN> byte tokens (llama.cpp's resegment), or the unknown token.
  std::vector<int32_t> ids;
  for (long i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].start, symbols[i].n);
    if (auto id = vocab_.find(piece)) {
      ids.push_back(*id);
      continue;
    }
    for (unsigned char c : piece) {
      if (byteIds_[c] >= 0) {
        ids.push_back(byteIds_[c]);
        continue;
      }
      MOE_CHECK(unkId_, what_, ": the text has a character outside the vocabulary, and there is neither a ",
                byteToken(c), " byte token nor an unknown token");
      ids.push_back(*unkId_);
    }
  }
  return ids;
}

}  // namespace moe::tok
