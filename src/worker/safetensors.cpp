#include "worker/safetensors.h"
#include "worker/mapped_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>
#include <utility>

#include "common/error.h"
#include "worker/half.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors.cpp reads the little-endian header length and tensor data in place");

namespace moe {
namespace {

using json = nlohmann::json;

constexpr int kMaxJsonDepth = 64;  // a header needs 3 (object, entry, shape)

struct DtypeInfo {
  SafetensorsDtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::F64, "F64", 8},        {SafetensorsDtype::F32, "F32", 4},
    {SafetensorsDtype::F16, "F16", 2},        {SafetensorsDtype::BF16, "BF16", 2},
    {SafetensorsDtype::I64, "I64", 8},        {SafetensorsDtype::I32, "I32", 4},
    {SafetensorsDtype::I16, "I16", 2},        {SafetensorsDtype::I8, "I8", 1},
    {SafetensorsDtype::U64, "U64", 8},        {SafetensorsDtype::U32, "U32", 4},
    {SafetensorsDtype::U16, "U16", 2},        {SafetensorsDtype::U8, "U8", 1},
    {SafetensorsDtype::BOOL, "BOOL", 1},      {SafetensorsDtype::F8_E4M3, "F8_E4M3", 1},
    {SafetensorsDtype::F8_E5M2, "F8_E5M2", 1},
};

const DtypeInfo& dtypeInfo(SafetensorsDtype t) {
  for (const DtypeInfo& d : kDtypes)
    if (d.dtype == t) return d;
  MOE_THROW("invalid SafetensorsDtype ", static_cast<int>(t));
}

std::string knownDtypes() {
  std::string s;
  for (const DtypeInfo& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// A JSON value for an error message, cut short when long.
std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string spanText(uint64_t begin, uint64_t end) { return str("[", begin, ", ", end, "]"); }

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Parses JSON text, refusing duplicate keys in any object (nlohmann would keep the last one
// silently) and nesting deeper than kMaxJsonDepth. `what` prefixes every message; `topKey` names
// what the keys of the top-level object are ("tensor name", "key").
json parseJsonStrict(const uint8_t* begin, const uint8_t* end, const std::string& what,
                     const char* topKey) {
  std::vector<std::unordered_set<std::string>> keys;  // one set per open object
  std::vector<std::string> path;                      // the key under which each object opened
  std::string lastKey;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        MOE_CHECK(depth < kMaxJsonDepth, what, ": JSON nested deeper than ", kMaxJsonDepth,
                  " levels");
        if (event == json::parse_event_t::object_start) {
          keys.emplace_back();
          path.push_back(keys.size() == 1 ? std::string() : lastKey);
        }
        break;
      case json::parse_event_t::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        if (!keys.back().insert(k).second) {
          if (keys.size() == 1) MOE_THROW(what, ": duplicate ", topKey, " '", k, "'");
          MOE_THROW(what, ": duplicate key '", k, "' in the object under '", path.back(), "'");
        }
        lastKey = k;
        break;
      }
      case json::parse_event_t::object_end:
        keys.pop_back();
        path.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  // nlohmann stops at a NUL byte as if the input ended there, which would hide whatever follows;
  // JSON text never contains a raw NUL, so refuse it up front.
  if (const void* nul = std::memchr(begin, 0, static_cast<size_t>(end - begin)))
    MOE_THROW(what, " is not valid JSON: NUL byte at offset ",
              static_cast<const uint8_t*>(nul) - begin);
  try {
    return json::parse(reinterpret_cast<const char*>(begin), reinterpret_cast<const char*>(end), cb,
                       /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    MOE_THROW(what, " is not valid JSON: ", e.what());
  }
}

uint64_t parseUnsigned(const json& v, const std::string& where, const char* field) {
  MOE_CHECK(v.is_number_unsigned(), where, ": ", field, " must be a non-negative integer, got ",
            brief(v));
  return v.get<uint64_t>();
}

const json& requireField(const json& entry, const char* field, const std::string& where) {
  auto it = entry.find(field);
  MOE_CHECK(it != entry.end(), where, ": missing field '", field, "'");
  return *it;
}

SafetensorsTensor parseTensor(const std::string& tensorName, const json& entry,
                              const uint8_t* dataSection, uint64_t dataSize,
                              const std::string& file) {
  const std::string where = str(file, ": tensor '", tensorName, "'");
  MOE_CHECK(!tensorName.empty(), file, ": a tensor has an empty name");
  MOE_CHECK(entry.is_object(), where,
            ": expected an object with dtype, shape and data_offsets, got ", brief(entry));
  SafetensorsTensor t;
  t.name = tensorName;

  const json& dtype = requireField(entry, "dtype", where);
  MOE_CHECK(dtype.is_string(), where, ": field 'dtype' must be a string, got ", brief(dtype));
  const std::string& dtypeName = dtype.get_ref<const std::string&>();
  const DtypeInfo* info = nullptr;
  for (const DtypeInfo& d : kDtypes)
    if (dtypeName == d.name) info = &d;
  MOE_CHECK(info != nullptr, where, ": unknown dtype '", dtypeName, "' (expected one of ",
            knownDtypes(), ")");
  t.dtype = info->dtype;

  const json& shape = requireField(entry, "shape", where);
  MOE_CHECK(shape.is_array(), where,
            ": field 'shape' must be an array of non-negative integers, got ", brief(shape));
  uint64_t count = 1;  // elements, overflow-checked
  for (size_t i = 0; i < shape.size(); ++i) {
    const std::string field = str("shape[", i, "]");
    const uint64_t d = parseUnsigned(shape[i], where, field.c_str());
    MOE_CHECK(d <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": ", field,
              " = ", d, " is too large");
    MOE_CHECK(d == 0 || count <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / d,
              where, ": shape ", brief(shape), " has more than 2^63 elements");
    count *= d;
    t.shape.push_back(static_cast<int64_t>(d));
  }
  t.numel = static_cast<int64_t>(count);
  MOE_CHECK(count <= std::numeric_limits<uint64_t>::max() / info->size, where, ": shape ",
            shapeText(t.shape), " of ", info->name, " overflows a 64-bit byte count");
  const uint64_t bytes = count * info->size;

  const json& offsets = requireField(entry, "data_offsets", where);
  MOE_CHECK(offsets.is_array() && offsets.size() == 2, where,
            ": field 'data_offsets' must be [begin, end], got ", brief(offsets));
  t.begin = parseUnsigned(offsets[0], where, "data_offsets[0] (begin)");
  t.end = parseUnsigned(offsets[1], where, "data_offsets[1] (end)");
  MOE_CHECK(t.begin <= t.end, where, ": data_offsets ", spanText(t.begin, t.end),
            ": begin is after end");
  MOE_CHECK(t.end <= dataSize, where, ": data_offsets ", spanText(t.begin, t.end),
            " reach beyond the data section, which has ", dataSize, " bytes");
  MOE_CHECK(t.end - t.begin == bytes, where, ": shape ", shapeText(t.shape), " of ", info->name,
            " needs ", bytes, " bytes but data_offsets ", spanText(t.begin, t.end), " span ",
            t.end - t.begin);
  t.data = dataSection + t.begin;
  return t;
}

bool isRegularFile(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool isDirectory(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool isPlainFileName(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\\') == std::string::npos && s.find('\0') == std::string::npos;
}

// The shards of a model.safetensors.index.json, each opened once, checked against its weight_map.
std::vector<SafetensorsFile> openShards(const std::string& dir, const std::string& indexPath) {
  MappedFile indexFile(indexPath);
  MOE_CHECK(indexFile.size() <= SafetensorsFile::kMaxHeaderSize, indexPath, ": ", indexFile.size(),
            " bytes exceeds the limit of ", SafetensorsFile::kMaxHeaderSize, " for an index");
  const json index = parseJsonStrict(indexFile.data(), indexFile.data() + indexFile.size(),
                                     indexPath, "key");
  MOE_CHECK(index.is_object(), indexPath, ": expected a JSON object with 'weight_map', got ",
            brief(index));
  auto wm = index.find("weight_map");
  MOE_CHECK(wm != index.end(), indexPath, ": missing field 'weight_map'");
  MOE_CHECK(wm->is_object(), indexPath,
            ": field 'weight_map' must be an object mapping tensor names to shard files, got ",
            brief(*wm));
  MOE_CHECK(!wm->empty(), indexPath, ": 'weight_map' lists no tensors");

  std::map<std::string, std::vector<std::string>> shardTensors;  // shard -> tensors it should hold
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    MOE_CHECK(it.value().is_string(), indexPath, ": weight_map['", it.key(),
              "'] must be a shard file name (string), got ", brief(it.value()));
    const std::string& shard = it.value().get_ref<const std::string&>();
    MOE_CHECK(isPlainFileName(shard), indexPath, ": weight_map['", it.key(), "'] = ", brief(it.value()),
              " is not a plain file name inside the model folder");
    shardTensors[shard].push_back(it.key());
  }

  std::vector<SafetensorsFile> files;
  for (const auto& [shard, tensors] : shardTensors) {
    const std::string path = dir + "/" + shard;
    try {
      files.push_back(SafetensorsFile::open(path));
    } catch (const Error& e) {
      MOE_THROW(indexPath, ": shard '", shard, "' (listed for tensor '", tensors.front(), "'",
                tensors.size() > 1 ? str(" and ", tensors.size() - 1, " more") : std::string(),
                "): ", e.what());
    }
    const SafetensorsFile& f = files.back();
    for (const std::string& t : tensors)
      MOE_CHECK(f.find(t) != nullptr, indexPath, ": weight_map puts tensor '", t, "' in '", shard,
                "', but ", path, " has no tensor of that name");
  }
  return files;
}

}  // namespace

const char* safetensorsDtypeName(SafetensorsDtype t) { return dtypeInfo(t).name; }
size_t safetensorsDtypeSize(SafetensorsDtype t) { return dtypeInfo(t).size; }

SafetensorsFile SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  MOE_CHECK(size >= 8, name, ": file is ", size,
            " bytes, too short for the 8-byte header length that starts a safetensors file");
  uint64_t n;
  std::memcpy(&n, data, 8);
  MOE_CHECK(n <= kMaxHeaderSize, name, ": header length ", n, " exceeds the limit of ",
            kMaxHeaderSize, " bytes");
  MOE_CHECK(n <= size - 8, name, ": header length ", n, " reaches beyond the end of the file (",
            size - 8, " bytes follow the length)");
  SafetensorsFile f;
  f.name_ = name;
  f.headerSize_ = n;
  f.dataSize_ = size - 8 - n;
  const uint8_t* dataSection = data + 8 + n;

  const json header = parseJsonStrict(data + 8, data + 8 + n, name + ": header", "tensor name");
  MOE_CHECK(header.is_object(), name, ": header must be a JSON object of tensors, got ",
            brief(header));

  f.tensors_.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {  // sorted by key
    if (it.key() == "__metadata__") {
      const json& m = it.value();
      MOE_CHECK(m.is_object(), name, ": __metadata__ must be an object of strings, got ", brief(m));
      for (auto mi = m.begin(); mi != m.end(); ++mi) {
        MOE_CHECK(mi.value().is_string(), name, ": __metadata__['", mi.key(),
                  "'] must be a string, got ", brief(mi.value()));
        f.metadata_.emplace(mi.key(), mi.value().get<std::string>());
      }
      continue;
    }
    f.tensors_.push_back(parseTensor(it.key(), it.value(), dataSection, f.dataSize_, name));
  }

  // No two tensors may share bytes: sort the spans and compare neighbours.
  std::vector<const SafetensorsTensor*> bySpan;
  bySpan.reserve(f.tensors_.size());
  for (const SafetensorsTensor& t : f.tensors_) bySpan.push_back(&t);
  std::sort(bySpan.begin(), bySpan.end(), [](const SafetensorsTensor* a, const SafetensorsTensor* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const SafetensorsTensor* furthest = nullptr;  // the span seen so far that ends last
  for (const SafetensorsTensor* t : bySpan) {
    if (furthest != nullptr)
      MOE_CHECK(t->begin >= furthest->end, name, ": tensors '", furthest->name, "' ",
                spanText(furthest->begin, furthest->end), " and '", t->name, "' ",
                spanText(t->begin, t->end), " overlap in the data section");
    if (furthest == nullptr || t->end > furthest->end) furthest = t;
  }
  return f;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  MappedFile file(path);
  SafetensorsFile f = parse(file.data(), file.size(), path);
  f.file_ = std::move(file);  // the mapping does not move, so the tensors' pointers stay valid
  return f;
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& tensorName) const {
  auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), tensorName,
      [](const SafetensorsTensor& t, const std::string& n) { return t.name < n; });
  return it != tensors_.end() && it->name == tensorName ? &*it : nullptr;
}

SafetensorsWeights::SafetensorsWeights(std::string origin, std::vector<SafetensorsFile> files)
    : origin_(std::move(origin)), files_(std::move(files)) {
  for (const SafetensorsFile& f : files_) {
    for (const SafetensorsTensor& t : f.tensors()) {
      Entry e{&t, &f, TensorMeta{}, false};
      switch (t.dtype) {
        case SafetensorsDtype::F32: e.meta.type = StorageType::F32; e.readable = true; break;
        case SafetensorsDtype::F16: e.meta.type = StorageType::F16; e.readable = true; break;
        case SafetensorsDtype::BF16: e.meta.type = StorageType::BF16; e.readable = true; break;
        default: e.meta.type = StorageType::F32; break;  // not used: meta() refuses the tensor
      }
      e.meta.name = t.name;
      e.meta.shape = t.shape;
      e.meta.file = f.name();
      auto [it, inserted] = entries_.emplace(t.name, std::move(e));
      MOE_CHECK(inserted, origin_, ": tensor '", t.name, "' is in two files: ",
                it->second.file->name(), " and ", f.name());
    }
  }
}

std::unique_ptr<SafetensorsWeights> SafetensorsWeights::open(const std::string& path) {
  MOE_CHECK(!path.empty(), "safetensors path is empty");
  std::vector<SafetensorsFile> files;
  if (isDirectory(path)) {
    const std::string single = path + "/model.safetensors";
    const std::string index = path + "/model.safetensors.index.json";
    if (isRegularFile(single)) {
      files.push_back(SafetensorsFile::open(single));
    } else if (isRegularFile(index)) {
      files = openShards(path, index);
    } else {
      MOE_THROW("model folder '", path,
                "' has neither model.safetensors nor model.safetensors.index.json");
    }
  } else {
    files.push_back(SafetensorsFile::open(path));  // names the path when it does not exist
  }
  return std::make_unique<SafetensorsWeights>(path, std::move(files));
}

std::vector<std::string> SafetensorsWeights::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

bool SafetensorsWeights::has(const std::string& name) const { return entries_.count(name) != 0; }

const SafetensorsWeights::Entry& SafetensorsWeights::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    std::string files;
    for (size_t i = 0; i < files_.size() && i < 4; ++i)
      files += (i ? ", " : "") + files_[i].name();
    if (files_.size() > 4) files += str(" and ", files_.size() - 4, " more");
    MOE_THROW("tensor '", name, "' not found in ", origin_,
              files_.size() == 1 && files_[0].name() == origin_ ? std::string()
                                                                : " (" + files + ")");
  }
  return it->second;
}

const SafetensorsWeights::Entry& SafetensorsWeights::readable(const std::string& name) const {
  const Entry& e = entry(name);
  MOE_CHECK(e.readable, e.file->name(), ": tensor '", name, "' has dtype ",
            safetensorsDtypeName(e.tensor->dtype),
            "; only F32, F16 and BF16 tensors can be read as weights");
  return e;
}

const SafetensorsTensor& SafetensorsWeights::tensor(const std::string& name) const {
  return *entry(name).tensor;
}

const TensorMeta& SafetensorsWeights::meta(const std::string& name) const {
  return readable(name).meta;
}

void SafetensorsWeights::readF32(const std::string& name, float* out) const {
  const SafetensorsTensor& t = *readable(name).tensor;
  const size_t n = static_cast<size_t>(t.numel);
  switch (t.dtype) {
    case SafetensorsDtype::F32:
      if (n != 0) std::memcpy(out, t.data, n * sizeof(float));
      return;
    case SafetensorsDtype::F16: halfToFloat(t.data, out, n); return;
    case SafetensorsDtype::BF16: bf16ToFloat(t.data, out, n); return;
    default: break;
  }
  MOE_THROW("unreachable: readable tensor '", name, "' with dtype ", safetensorsDtypeName(t.dtype));
}

const void* SafetensorsWeights::rawData(const std::string& name) const {
  return readable(name).tensor->data;
}

void SafetensorsWeights::release(const std::string& name) const {
  const Entry& e = entry(name);
  if (e.file->mapped()) dropMappedPages(e.tensor->data, static_cast<size_t>(e.tensor->end - e.tensor->begin));
}

std::unique_ptr<WeightSource> openSafetensors(const std::string& modelDir) {
  return SafetensorsWeights::open(modelDir);
}

}  // namespace moe
