// Tokenizer: loading tokenizer.json / TokenizerSpec into the pipeline of tokenizer_pipeline.h and
// bpe.h, added-token extraction (tokenizers/src/tokenizer/added_vocabulary.rs), post-processing
// and decoding. See tokenizer.h for the contract.
#include "worker/tokenizer.h"

#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/log.h"
#include "common/utf8.h"
#include "worker/bpe.h"
#include "worker/tokenizer_pipeline.h"
#include "worker/tokenizer_regex.h"
#include "worker/tokenizer_unicode.h"

namespace moe {

using json = nlohmann::json;
using namespace tok;

namespace {

constexpr int kMaxNesting = 32;  // Sequence inside Sequence ...
const char* const kMetaspace = "\xE2\x96\x81";  // U+2581 ▁

struct AddedToken {
  std::string content;
  std::string matchText;  // content, or its normalized form for normalized tokens
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, normalized = true, singleWord = false;
};

// Leftmost-longest matching of a set of byte strings (tokenizers uses an Aho-Corasick automaton
// with MatchKind::LeftmostLongest; this trie gives the same matches).
class AddedTrie {
 public:
  void add(const std::string& s, int32_t value) {
    if (s.empty()) return;
    int32_t node = 0;
    for (unsigned char c : s) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        values_.push_back(-1);
        it = edges_.emplace(key, static_cast<int32_t>(values_.size() - 1)).first;
      }
      node = it->second;
    }
    values_[node] = value;
    first_[static_cast<unsigned char>(s[0])] = true;
  }
  bool empty() const { return values_.size() == 1; }
  // Longest match starting at s[pos]: (length, value), or length 0.
  std::pair<size_t, int32_t> longestAt(std::string_view s, size_t pos) const {
    std::pair<size_t, int32_t> best{0, -1};
    if (!first_[static_cast<unsigned char>(s[pos])]) return best;
    int32_t node = 0;
    for (size_t i = pos; i < s.size(); ++i) {
      auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(s[i]));
      if (it == edges_.end()) break;
      node = it->second;
      if (values_[node] >= 0) best = {i + 1 - pos, values_[node]};
    }
    return best;
  }

 private:
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<int32_t> values_{-1};
  bool first_[256] = {};
};

struct PostProcess {
  std::vector<int32_t> prefix, suffix;
  bool hasTemplate = false;
};

std::string typeName(const json& j) { return j.type_name(); }

// ---- JSON field access with messages naming file and field ----------------------------------
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }

  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    MOE_THROW(file_, ": ", field, ": ", msg);
  }
  const json& require(const json& obj, const char* key, const std::string& path) const {
    expectObject(obj, path);
    auto it = obj.find(key);
    if (it == obj.end()) fail(join(path, key), "missing");
    return *it;
  }
  const json* optional(const json& obj, const char* key, const std::string& path) const {
    expectObject(obj, path);
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  void expectObject(const json& j, const std::string& path) const {
    if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  }
  std::string string(const json& j, const std::string& path) const {
    if (!j.is_string()) fail(path, "expected a string, got " + typeName(j));
    const auto& s = j.get_ref<const std::string&>();
    if (findInvalidUtf8(s) != kUtf8Valid) fail(path, "the string is not valid UTF-8");
    return s;
  }
  std::string stringField(const json& obj, const char* key, const std::string& path) const {
    return string(require(obj, key, path), join(path, key));
  }
  bool boolField(const json& obj, const char* key, const std::string& path, bool def) const {
    const json* v = optional(obj, key, path);
    if (!v) return def;
    if (!v->is_boolean()) fail(join(path, key), "expected true or false, got " + typeName(*v));
    return v->get<bool>();
  }
  int64_t intValue(const json& j, const std::string& path, int64_t lo, int64_t hi) const {
    if (!j.is_number_integer()) fail(path, "expected an integer, got " + typeName(j));
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(hi))
      fail(path, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    const int64_t v = j.get<int64_t>();
    if (v < lo || v > hi)
      fail(path, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                     std::to_string(v));
    return v;
  }
  const json& array(const json& j, const std::string& path) const {
    if (!j.is_array()) fail(path, "expected an array, got " + typeName(j));
    return j;
  }
  std::string oneChar(const json& j, const std::string& path) const {
    std::string s = string(j, path);
    size_t pos = 0;
    if (s.empty() || (nextCodePoint(s, pos), pos != s.size())) fail(path, "expected exactly one character");
    return s;
  }
  // {"String": s} or {"Regex": r} -> a compiled pattern.
  std::unique_ptr<Regex> pattern(const json& j, const std::string& path) const {
    expectObject(j, path);
    if (j.contains("String")) {
      return std::make_unique<Regex>(Regex::escape(string(j["String"], path + ".String")),
                                     file_ + ": " + path + ".String");
    }
    if (j.contains("Regex"))
      return std::make_unique<Regex>(string(j["Regex"], path + ".Regex"), file_ + ": " + path + ".Regex");
    fail(path, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }
  std::string type(const json& j, const std::string& path) const { return stringField(j, "type", path); }
  void depth(int d, const std::string& path) const {
    if (d > kMaxNesting) fail(path, "nested more than " + std::to_string(kMaxNesting) + " levels deep");
  }
  [[noreturn]] void unsupported(const std::string& path, const std::string& kind, const std::string& type,
                                const char* supported) const {
    fail(path, kind + " type '" + type + "' is not supported (supported: " + supported + ")");
  }

 private:
  std::string file_;
};

PrependScheme parseScheme(const Reader& r, const json& j, const std::string& path) {
  const json* ps = r.optional(j, "prepend_scheme", path);
  const json* aps = r.optional(j, "add_prefix_space", path);
  PrependScheme scheme = PrependScheme::Always;
  if (ps) {
    const std::string s = r.string(*ps, Reader::join(path, "prepend_scheme"));
    if (s == "always") scheme = PrependScheme::Always;
    else if (s == "first") scheme = PrependScheme::First;
    else if (s == "never") scheme = PrependScheme::Never;
    else r.fail(Reader::join(path, "prepend_scheme"), "expected always, first or never, got '" + s + "'");
  }
  if (aps) {
    if (!aps->is_boolean()) r.fail(Reader::join(path, "add_prefix_space"), "expected true or false");
    if (!aps->get<bool>()) {
      if (ps && scheme != PrependScheme::Never)
        r.fail(Reader::join(path, "add_prefix_space"), "false does not match prepend_scheme");
      scheme = PrependScheme::Never;
    }
  }
  return scheme;
}

std::unique_ptr<Normalizer> parseNormalizer(const Reader& r, const json& j, const std::string& path, int depth) {
  r.depth(depth, path);
  const std::string type = r.type(j, path);
  if (type == "Sequence") {
    const json& list = r.array(r.require(j, "normalizers", path), path + ".normalizers");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      steps.push_back(parseNormalizer(r, list[i], Reader::index(path + ".normalizers", i), depth + 1));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(r.stringField(j, "prepend", path));
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(r.pattern(r.require(j, "pattern", path), path + ".pattern"),
                                               r.stringField(j, "content", path));
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(r.boolField(j, "strip_left", path, true),
                                             r.boolField(j, "strip_right", path, true));
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  r.unsupported(path, "normalizer", type, "Sequence, Prepend, Replace, NFC, NFD, Lowercase, Strip, ByteLevel");
}

SplitBehavior parseBehavior(const Reader& r, const json& j, const std::string& path) {
  const std::string b = r.stringField(j, "behavior", path);
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  r.fail(path + ".behavior",
         "expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, got '" + b + "'");
}

std::unique_ptr<PreTokenizer> parsePreTokenizer(const Reader& r, const json& j, const std::string& path,
                                                int depth) {
  r.depth(depth, path);
  const std::string type = r.type(j, path);
  if (type == "Sequence") {
    const json& list = r.array(r.require(j, "pretokenizers", path), path + ".pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      steps.push_back(parsePreTokenizer(r, list[i], Reader::index(path + ".pretokenizers", i), depth + 1));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(r.boolField(j, "add_prefix_space", path, true),
                                                   r.boolField(j, "use_regex", path, true));
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(r.pattern(r.require(j, "pattern", path), path + ".pattern"),
                                               parseBehavior(r, j, path), r.boolField(j, "invert", path, false));
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(r.boolField(j, "individual_digits", path, false));
  if (type == "Metaspace")
    return std::make_unique<MetaspacePreTokenizer>(r.oneChar(r.require(j, "replacement", path), path + ".replacement"),
                                                   parseScheme(r, j, path), r.boolField(j, "split", path, true));
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPreTokenizer>();
  r.unsupported(path, "pre-tokenizer", type, "Sequence, ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit");
}

std::unique_ptr<Decoder> parseDecoder(const Reader& r, const json& j, const std::string& path, int depth) {
  r.depth(depth, path);
  const std::string type = r.type(j, path);
  if (type == "Sequence") {
    const json& list = r.array(r.require(j, "decoders", path), path + ".decoders");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      steps.push_back(parseDecoder(r, list[i], Reader::index(path + ".decoders", i), depth + 1));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(r.pattern(r.require(j, "pattern", path), path + ".pattern"),
                                            r.stringField(j, "content", path));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(
        r.oneChar(r.require(j, "content", path), path + ".content"),
        static_cast<size_t>(r.intValue(r.require(j, "start", path), path + ".start", 0, 1 << 20)),
        static_cast<size_t>(r.intValue(r.require(j, "stop", path), path + ".stop", 0, 1 << 20)));
  if (type == "Metaspace")
    return std::make_unique<MetaspaceDecoder>(r.oneChar(r.require(j, "replacement", path), path + ".replacement"),
                                              parseScheme(r, j, path));
  if (type == "BPEDecoder") {
    const json* s = r.optional(j, "suffix", path);
    return std::make_unique<BpeSuffixDecoder>(s ? r.string(*s, path + ".suffix") : "</w>");
  }
  r.unsupported(path, "decoder", type, "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, BPEDecoder");
}

// Appends a post-processor's special tokens (a Sequence wraps later templates around earlier ones).
void parsePostProcessor(const Reader& r, const json& j, const std::string& path, int depth, PostProcess& pp) {
  r.depth(depth, path);
  const std::string type = r.type(j, path);
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    const json& list = r.array(r.require(j, "processors", path), path + ".processors");
    for (size_t i = 0; i < list.size(); ++i)
      parsePostProcessor(r, list[i], Reader::index(path + ".processors", i), depth + 1, pp);
    return;
  }
  if (type != "TemplateProcessing")
    r.unsupported(path, "post-processor", type, "TemplateProcessing, ByteLevel, Sequence");
  const json& specials = r.require(j, "special_tokens", path);
  r.expectObject(specials, path + ".special_tokens");
  const json& single = r.array(r.require(j, "single", path), path + ".single");
  std::vector<int32_t> prefix, suffix;
  bool seenSequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string p = Reader::index(path + ".single", i);
    const json& piece = single[i];
    r.expectObject(piece, p);
    if (piece.contains("Sequence")) {
      const std::string id = r.stringField(piece["Sequence"], "id", p + ".Sequence");
      if (id != "A") r.fail(p + ".Sequence.id", "a single-sequence template can only use sequence A, got '" + id + "'");
      if (seenSequence) r.fail(p, "the template names the sequence twice");
      seenSequence = true;
      continue;
    }
    if (!piece.contains("SpecialToken")) r.fail(p, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    const std::string name = r.stringField(piece["SpecialToken"], "id", p + ".SpecialToken");
    auto it = specials.find(name);
    if (it == specials.end()) r.fail(p + ".SpecialToken.id", "'" + name + "' is not in special_tokens");
    const std::string sp = path + ".special_tokens." + name;
    const json& ids = r.array(r.require(*it, "ids", sp), sp + ".ids");
    for (size_t k = 0; k < ids.size(); ++k) {
      const auto id = static_cast<int32_t>(
          r.intValue(ids[k], Reader::index(sp + ".ids", k), 0, std::numeric_limits<int32_t>::max()));
      (seenSequence ? suffix : prefix).push_back(id);
    }
  }
  if (!seenSequence) r.fail(path + ".single", "the template has no {\"Sequence\": {\"id\": \"A\"}} piece");
  pp.prefix.insert(pp.prefix.begin(), prefix.begin(), prefix.end());
  pp.suffix.insert(pp.suffix.end(), suffix.begin(), suffix.end());
  pp.hasTemplate = true;
}

// "Rust regex \w": Alphabetic, M, Nd, Pc, Join_Control.
bool isWordChar(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  static const Regex word("^\\w$", "word class");
  std::string s;
  appendUtf8(s, cp);
  return word.findMatches(s)[0].match;
}

uint32_t lastCodePoint(std::string_view s) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return nextCodePoint(s, start);
}

}  // namespace

// ---- the tokenizer ------------------------------------------------------------------------------
struct Tokenizer::Impl {
  std::string name;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> preTokenizer;
  std::unique_ptr<Bpe> model;
  std::unique_ptr<Decoder> decoder;
  std::vector<AddedToken> added;                  // in order of registration
  std::unordered_map<std::string, size_t> addedByContent;
  std::unordered_map<int32_t, size_t> addedById;
  std::unordered_set<std::string> specialContents;
  AddedTrie rawTrie, normalizedTrie;               // values: index into `added`
  PostProcess post;
  std::optional<int32_t> bos, eos, unk;

  // Registers added tokens as tokenizers' AddedVocabulary::add_tokens does: the id is the
  // token's existing id (added or model vocabulary), else the next free one after the model's.
  void addTokens(std::vector<AddedToken> tokens, const std::vector<int32_t>& declaredIds) {
    int64_t nextId = static_cast<int64_t>(model->vocab().size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      AddedToken& t = tokens[i];
      if (t.content.empty()) continue;
      int32_t id;
      if (auto it = addedByContent.find(t.content); it != addedByContent.end()) id = added[it->second].id;
      else if (auto vid = model->vocab().find(t.content)) id = *vid;
      else {
        MOE_CHECK(nextId <= std::numeric_limits<int32_t>::max(), name, ": added_tokens: too many tokens");
        id = static_cast<int32_t>(nextId++);
      }
      if (i < declaredIds.size() && declaredIds[i] >= 0 && declaredIds[i] != id)
        logWarn(name, ": added token '", t.content, "' is declared with id ", declaredIds[i], " but gets id ", id,
                " (as in the Python library)");
      t.id = id;
      t.matchText = t.content;
      if (t.normalized && normalizer) normalizer->normalize(t.matchText);
      if (t.special) specialContents.insert(t.content);
      if (auto it = addedById.find(id); it != addedById.end()) {
        added[it->second] = t;  // same id: replace the earlier entry
      } else {
        addedById[id] = added.size();
        added.push_back(t);
      }
      addedByContent[t.content] = addedById[id];
    }
    rawTrie = AddedTrie();
    normalizedTrie = AddedTrie();
    for (size_t i = 0; i < added.size(); ++i)
      (added[i].normalized ? normalizedTrie : rawTrie).add(added[i].matchText, static_cast<int32_t>(i));
  }

  // tokenizers' AddedVocabulary::find_matches + split_with_indices on one piece.
  void splitAdded(const Piece& piece, const AddedTrie& trie, std::vector<Piece>& out) const {
    const std::string& s = piece.text;
    if (trie.empty() || s.empty()) {
      if (!s.empty()) out.push_back(piece);
      return;
    }
    auto emit = [&](size_t a, size_t b, int32_t id) {
      if (a >= b) return;
      out.push_back(Piece{s.substr(a, b - a), id, piece.atStart && a == 0});
    };
    size_t startOffset = 0;
    for (size_t pos = 0; pos < s.size();) {
      auto [len, index] = trie.longestAt(s, pos);
      if (len == 0) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = pos + len;
      pos = stop;
      const AddedToken& t = added[index];
      if (t.singleWord) {
        const bool startSpace = start == 0 || !isWordChar(lastCodePoint(std::string_view(s).substr(0, start)));
        size_t p = stop;
        const bool stopSpace = stop == s.size() || !isWordChar(nextCodePoint(s, p));
        if (!startSpace || !stopSpace) continue;
      }
      if (t.lstrip) {
        size_t newStart = start;
        while (newStart > 0) {
          size_t b = newStart - 1;
          while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
          size_t q = b;
          if (!isWhiteSpace(nextCodePoint(s, q))) break;
          newStart = b;
        }
        start = std::max(newStart, startOffset);
      }
      if (t.rstrip) {
        while (stop < s.size()) {
          size_t q = stop;
          if (!isWhiteSpace(nextCodePoint(s, q))) break;
          stop = q;
        }
      }
      if (startOffset < start) emit(startOffset, start, -1);
      // After an rstrip, the next match may start inside the stripped spaces: tokenizers then
      // emits the token without a gap piece (the slices overlap), and so does this.
      out.push_back(Piece{s.substr(start, stop - start), t.id, piece.atStart && start == 0});
      startOffset = stop;
    }
    if (startOffset < s.size()) emit(startOffset, s.size(), -1);
  }

  std::vector<int32_t> encode(std::string_view input, bool addSpecial) const {
    const std::string text = replaceInvalidUtf8(input);
    std::vector<Piece> pieces;
    splitAdded(Piece{text, -1, true}, rawTrie, pieces);
    std::vector<Piece> normalized;
    normalized.reserve(pieces.size());
    for (auto& p : pieces) {
      if (p.id >= 0) {
        normalized.push_back(std::move(p));
        continue;
      }
      if (normalizer) normalizer->normalize(p.text);
      splitAdded(p, normalizedTrie, normalized);
    }
    if (preTokenizer) preTokenizer->preTokenize(normalized);
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 8);
    if (addSpecial) ids.insert(ids.end(), post.prefix.begin(), post.prefix.end());
    for (const auto& p : normalized) {
      if (p.id >= 0) ids.push_back(p.id);
      else model->tokenize(p.text, ids);
    }
    if (addSpecial) ids.insert(ids.end(), post.suffix.begin(), post.suffix.end());
    return ids;
  }

  // tokenizers' simple_id_to_token, then the model.
  std::optional<std::string> token(int32_t id) const {
    if (auto it = addedById.find(id); it != addedById.end()) return added[it->second].matchText;
    if (auto t = model->vocab().token(id)) return std::string(*t);
    return std::nullopt;
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

namespace {

std::string readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  MOE_CHECK(in, path, ": cannot open ", what);
  std::ostringstream ss;
  ss << in.rdbuf();
  MOE_CHECK(!in.bad(), path, ": read error");
  return ss.str();
}

bool fileExists(const std::string& path) {
  std::ifstream in(path);
  return static_cast<bool>(in);
}

json parseJson(std::string_view text, const std::string& name) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // Line and column of the failing byte, counted from 1.
    const size_t at = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; ++i) {
      if (text[i] == '\n') { ++line; col = 1; }
      else ++col;
    }
    MOE_THROW(name, ": malformed JSON at byte ", e.byte, " (line ", line, ", column ", col, "): ", e.what());
  }
}

// bos_token / eos_token of tokenizer_config.json: a string, an AddedToken object or null.
std::optional<std::string> configToken(const Reader& r, const json& cfg, const char* key) {
  const json* v = r.optional(cfg, key, "");
  if (!v) return std::nullopt;
  if (v->is_string()) return r.string(*v, key);
  if (v->is_object()) return r.stringField(*v, "content", key);
  r.fail(key, "expected a string or an object with \"content\", got " + typeName(*v));
}

void applyConfig(Tokenizer::Impl& impl, const Tokenizer& tk, std::optional<std::string_view> configJson,
                 const std::string& configName) {
  if (!configJson) {
    if (impl.post.prefix.size() == 1) impl.bos = impl.post.prefix[0];
    if (impl.post.suffix.size() == 1) impl.eos = impl.post.suffix[0];
    return;
  }
  const json cfg = parseJson(*configJson, configName);
  const Reader r(configName);
  r.expectObject(cfg, "(top level)");
  // A token named by the config wins; without one, the template's single special token.
  auto resolve = [&](const char* key, const std::vector<int32_t>& templ) -> std::optional<int32_t> {
    auto content = configToken(r, cfg, key);
    if (!content) return templ.size() == 1 ? std::optional<int32_t>(templ[0]) : std::nullopt;
    auto id = tk.tokenToId(*content);
    if (!id) logWarn(configName, ": ", key, ": '", *content, "' is not a token of ", impl.name);
    return id;
  };
  impl.bos = resolve("bos_token", impl.post.prefix);
  impl.eos = resolve("eos_token", impl.post.suffix);
  auto flag = [&](const char* key) -> std::optional<bool> {
    const json* v = r.optional(cfg, key, "");
    if (!v) return std::nullopt;
    if (!v->is_boolean()) r.fail(key, "expected true or false, got " + typeName(*v));
    return v->get<bool>();
  };
  const auto addBos = flag("add_bos_token");
  const auto addEos = flag("add_eos_token");
  if (impl.post.hasTemplate) {
    const bool templBos = impl.bos && !impl.post.prefix.empty() && impl.post.prefix.front() == *impl.bos;
    const bool templEos = impl.eos && !impl.post.suffix.empty() && impl.post.suffix.back() == *impl.eos;
    if ((addBos && *addBos != templBos) || (addEos && *addEos != templEos))
      logWarn(configName, ": add_bos_token/add_eos_token disagree with the post_processor template of ", impl.name,
              "; the template decides (as in the Python tokenizers library)");
    return;
  }
  if (addBos && *addBos) {
    MOE_CHECK(impl.bos, configName, ": add_bos_token is true but there is no bos_token");
    impl.post.prefix = {*impl.bos};
  }
  if (addEos && *addEos) {
    MOE_CHECK(impl.eos, configName, ": add_eos_token is true but there is no eos_token");
    impl.post.suffix = {*impl.eos};
  }
}

std::unique_ptr<Bpe> parseModel(const Reader& r, const json& root) {
  const json& m = r.require(root, "model", "");
  r.expectObject(m, "model");
  if (const json* t = r.optional(m, "type", "model")) {
    const std::string type = r.string(*t, "model.type");
    if (type != "BPE") r.unsupported("model.type", "model", type, "BPE");
  }
  if (const json* d = r.optional(m, "dropout", "model")) {
    if (!d->is_number() || d->get<double>() != 0.0)
      r.fail("model.dropout", "must be null (BPE dropout makes encoding random)");
  }
  const json& vocabJson = r.require(m, "vocab", "model");
  r.expectObject(vocabJson, "model.vocab");
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(vocabJson.size());
  for (auto it = vocabJson.begin(); it != vocabJson.end(); ++it) {
    if (findInvalidUtf8(it.key()) != kUtf8Valid) r.fail("model.vocab", "a token is not valid UTF-8");
    vocab.emplace_back(it.key(), static_cast<int32_t>(r.intValue(it.value(), "model.vocab['" + it.key() + "']", 0,
                                                                 std::numeric_limits<int32_t>::max())));
  }
  const json& mergesJson = r.array(r.require(m, "merges", "model"), "model.merges");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(mergesJson.size());
  for (size_t i = 0; i < mergesJson.size(); ++i) {
    const json& e = mergesJson[i];
    const std::string p = Reader::index("model.merges", i);
    if (e.is_string()) {
      const std::string line = r.string(e, p);
      if (line.rfind("#version", 0) == 0) continue;
      const size_t sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
        r.fail(p, "expected \"left right\" (two tokens separated by one space), got '" + line + "'");
      merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2) {
      merges.emplace_back(r.string(e[0], p + "[0]"), r.string(e[1], p + "[1]"));
    } else {
      r.fail(p, "expected \"left right\" or [left, right], got " + typeName(e));
    }
  }
  BpeOptions opt;
  if (const json* u = r.optional(m, "unk_token", "model")) opt.unkToken = r.string(*u, "model.unk_token");
  opt.byteFallback = r.boolField(m, "byte_fallback", "model", false);
  opt.fuseUnk = r.boolField(m, "fuse_unk", "model", false);
  opt.ignoreMerges = r.boolField(m, "ignore_merges", "model", false);
  if (const json* v = r.optional(m, "continuing_subword_prefix", "model"))
    opt.continuingSubwordPrefix = r.string(*v, "model.continuing_subword_prefix");
  if (const json* v = r.optional(m, "end_of_word_suffix", "model"))
    opt.endOfWordSuffix = r.string(*v, "model.end_of_word_suffix");
  return std::make_unique<Bpe>(std::move(vocab), merges, std::move(opt), r.file() + ": model.merges");
}

std::string folderOf(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::fromJsonString(std::string_view tokenizerJson, const std::string& name,
                                                     std::optional<std::string_view> configJson) {
  const json root = parseJson(tokenizerJson, name);
  const Reader r(name);
  r.expectObject(root, "(top level)");
  if (const json* v = r.optional(root, "version", "")) {
    const std::string version = r.string(*v, "version");
    if (version != "1.0") r.fail("version", "unknown tokenizer.json version '" + version + "' (expected 1.0)");
  }
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  if (const json* n = r.optional(root, "normalizer", "")) impl->normalizer = parseNormalizer(r, *n, "normalizer", 0);
  if (const json* p = r.optional(root, "pre_tokenizer", ""))
    impl->preTokenizer = parsePreTokenizer(r, *p, "pre_tokenizer", 0);
  impl->model = parseModel(r, root);
  if (const json* d = r.optional(root, "decoder", "")) impl->decoder = parseDecoder(r, *d, "decoder", 0);
  if (const json* pp = r.optional(root, "post_processor", ""))
    parsePostProcessor(r, *pp, "post_processor", 0, impl->post);

  std::vector<AddedToken> tokens;
  std::vector<int32_t> declared;
  if (const json* at = r.optional(root, "added_tokens", "")) {
    r.array(*at, "added_tokens");
    for (size_t i = 0; i < at->size(); ++i) {
      const std::string p = Reader::index("added_tokens", i);
      const json& e = (*at)[i];
      AddedToken t;
      t.content = r.stringField(e, "content", p);
      t.special = r.boolField(e, "special", p, false);
      t.singleWord = r.boolField(e, "single_word", p, false);
      t.lstrip = r.boolField(e, "lstrip", p, false);
      t.rstrip = r.boolField(e, "rstrip", p, false);
      t.normalized = r.boolField(e, "normalized", p, !t.special);
      const json* id = r.optional(e, "id", p);
      declared.push_back(id ? static_cast<int32_t>(r.intValue(*id, p + ".id", 0, std::numeric_limits<int32_t>::max()))
                            : -1);
      tokens.push_back(std::move(t));
    }
  }
  impl->addTokens(std::move(tokens), declared);
  if (const json* unk = r.optional(root.at("model"), "unk_token", "model")) {
    const std::string u = r.string(*unk, "model.unk_token");
    if (auto it = impl->addedByContent.find(u); it != impl->addedByContent.end()) impl->unk = impl->added[it->second].id;
    else impl->unk = impl->model->vocab().find(u);
  }
  Impl& ref = *impl;
  std::unique_ptr<Tokenizer> tk(new Tokenizer(std::move(impl)));
  applyConfig(ref, *tk, configJson, folderOf(name) + "/tokenizer_config.json");
  return tk;
}

std::unique_ptr<Tokenizer> Tokenizer::fromFile(const std::string& tokenizerJsonPath) {
  const std::string text = readFile(tokenizerJsonPath, "tokenizer file");
  const std::string configPath = folderOf(tokenizerJsonPath) + "/tokenizer_config.json";
  if (fileExists(configPath)) {
    const std::string config = readFile(configPath, "tokenizer config");
    return fromJsonString(text, tokenizerJsonPath, std::string_view(config));
  }
  return fromJsonString(text, tokenizerJsonPath);
}

std::unique_ptr<Tokenizer> Tokenizer::fromModelFolder(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const std::string path = d + "/tokenizer.json";
  MOE_CHECK(fileExists(path), "model folder '", dir, "' has no tokenizer.json");
  return fromFile(path);
}

std::unique_ptr<Tokenizer> Tokenizer::fromSpec(const TokenizerSpec& spec) {
  const std::string& name = spec.name;
  const size_t n = spec.tokens.size();
  MOE_CHECK(n > 0, name, ": tokens: the vocabulary is empty");
  MOE_CHECK(n <= static_cast<size_t>(std::numeric_limits<int32_t>::max()), name, ": tokens: too many tokens");
  MOE_CHECK(spec.types.empty() || spec.types.size() == n, name, ": token types: ", spec.types.size(),
            " entries for ", n, " tokens");
  auto checkId = [&](const std::optional<int32_t>& id, const char* what) {
    MOE_CHECK(!id || (*id >= 0 && static_cast<size_t>(*id) < n), name, ": ", what, " ", id.value_or(-1),
              " is outside the vocabulary of ", n, " tokens");
  };
  checkId(spec.bosId, "bos id");
  checkId(spec.eosId, "eos id");
  checkId(spec.unkId, "unk id");
  MOE_CHECK(!spec.addBos || spec.bosId, name, ": add_bos is set but there is no bos id");
  MOE_CHECK(!spec.addEos || spec.eosId, name, ": add_eos is set but there is no eos id");

  auto impl = std::make_unique<Impl>();
  impl->name = name;
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    MOE_CHECK(findInvalidUtf8(spec.tokens[i]) == kUtf8Valid, name, ": token ", i, " is not valid UTF-8");
    vocab.emplace_back(spec.tokens[i], static_cast<int32_t>(i));
  }
  if (spec.kind == TokenizerKind::ByteLevelBpe) {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < spec.preTokenizerRegexes.size(); ++i)
      steps.push_back(std::make_unique<SplitPreTokenizer>(
          std::make_unique<Regex>(spec.preTokenizerRegexes[i], name + ": pre-tokenizer regex " + std::to_string(i)),
          SplitBehavior::Isolated, false));
    steps.push_back(std::make_unique<ByteLevelPreTokenizer>(false, spec.preTokenizerRegexes.empty()));
    impl->preTokenizer = std::make_unique<SequencePreTokenizer>(std::move(steps));
    BpeOptions opt;
    opt.ignoreMerges = spec.ignoreMerges;
    impl->model = std::make_unique<Bpe>(std::move(vocab), spec.merges, std::move(opt), name + ": merges");
    impl->decoder = std::make_unique<ByteLevelDecoder>();
  } else {
    MOE_CHECK(spec.scores.size() == n, name, ": scores: ", spec.scores.size(), " entries for ", n,
              " tokens (a sentencepiece tokenizer merges by score)");
    std::vector<std::unique_ptr<Normalizer>> norm;
    if (spec.addSpacePrefix) norm.push_back(std::make_unique<PrependNormalizer>(kMetaspace));
    norm.push_back(std::make_unique<ReplaceNormalizer>(std::make_unique<Regex>(" ", name + ": space"), kMetaspace));
    impl->normalizer = std::make_unique<SequenceNormalizer>(std::move(norm));
    impl->model = std::make_unique<Bpe>(std::move(vocab), spec.scores, spec.unkId, name);
    std::vector<std::unique_ptr<Decoder>> dec;
    dec.push_back(std::make_unique<ReplaceDecoder>(std::make_unique<Regex>(kMetaspace, name + ": metaspace"), " "));
    dec.push_back(std::make_unique<ByteFallbackDecoder>());
    dec.push_back(std::make_unique<FuseDecoder>());
    if (spec.addSpacePrefix) dec.push_back(std::make_unique<StripDecoder>(" ", 1, 0));
    impl->decoder = std::make_unique<SequenceDecoder>(std::move(dec));
  }
  // Control, user-defined and unknown tokens are matched in the text, like tokenizer.json's
  // added_tokens (special for control/unknown), on the raw text.
  std::vector<AddedToken> added;
  for (size_t i = 0; i < spec.types.size(); ++i) {
    const TokenType t = spec.types[i];
    if (t != TokenType::Control && t != TokenType::UserDefined && t != TokenType::Unknown) continue;
    AddedToken a;
    a.content = spec.tokens[i];
    a.special = t != TokenType::UserDefined;
    a.normalized = false;
    added.push_back(std::move(a));
  }
  impl->addTokens(std::move(added), {});
  // A token listed twice resolves to its first id when added; keep the declared ids.
  impl->bos = spec.bosId;
  impl->eos = spec.eosId;
  impl->unk = spec.unkId;
  if (spec.addBos) impl->post.prefix = {*spec.bosId};
  if (spec.addEos) impl->post.suffix = {*spec.eosId};
  impl->post.hasTemplate = spec.addBos || spec.addEos;
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool addSpecial) const {
  try {
    return impl_->encode(text, addSpecial);
  } catch (const Error& e) {
    MOE_THROW(impl_->name, ": encoding failed: ", e.what());
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skipSpecial) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto t = impl_->token(id);
    if (!t) continue;
    if (skipSpecial && impl_->specialContents.count(*t)) continue;
    tokens.push_back(std::move(*t));
  }
  if (!impl_->decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  std::string out;
  for (auto& s : impl_->decoder->decodeChain(std::move(tokens))) out += s;
  return out;
}

std::string Tokenizer::pieceText(int32_t id) const {
  if (auto it = impl_->addedById.find(id); it != impl_->addedById.end()) return impl_->added[it->second].content;
  const std::string token = idToToken(id);
  if (!impl_->decoder) return token;
  std::string raw;
  for (auto& s : impl_->decoder->pieceChain({token})) raw += s;
  std::string out;
  for (size_t pos = 0; pos < raw.size();) {
    size_t len = 1;
    if (decodeUtf8(raw, pos, len) >= 0) {
      out.append(raw, pos, len);
      pos += len;
      continue;
    }
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", static_cast<unsigned char>(raw[pos]));
    out += buf;
    ++pos;
  }
  return out;
}

std::string Tokenizer::idToToken(int32_t id) const {
  auto t = impl_->token(id);
  MOE_CHECK(t, impl_->name, ": token id ", id, " is not in the vocabulary (", vocabSize(), " ids)");
  return *t;
}

std::optional<int32_t> Tokenizer::tokenToId(std::string_view piece) const {
  if (auto it = impl_->addedByContent.find(std::string(piece)); it != impl_->addedByContent.end())
    return impl_->added[it->second].id;
  return impl_->model->vocab().find(piece);
}

int32_t Tokenizer::vocabSize() const {
  int32_t maxId = impl_->model->vocab().maxId();
  for (const auto& a : impl_->added) maxId = std::max(maxId, a.id);
  return maxId + 1;
}

bool Tokenizer::isSpecial(int32_t id) const {
  auto it = impl_->addedById.find(id);
  return it != impl_->addedById.end() && impl_->added[it->second].special;
}

std::optional<int32_t> Tokenizer::bosId() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eosId() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::unkId() const { return impl_->unk; }
const std::vector<int32_t>& Tokenizer::specialPrefix() const { return impl_->post.prefix; }
const std::vector<int32_t>& Tokenizer::specialSuffix() const { return impl_->post.suffix; }
const std::string& Tokenizer::name() const { return impl_->name; }

}  // namespace moe
