// Results file writer and reader. Layout: docs/results-format.md.
//
// Every per-question dataset has the question axis first, is chunked along it and extendible
// without limit; append() extends them all by the batch and writes one hyperslab each, then
// flushes. The default (oldest compatible) file format is used on purpose: files written with
// the 1.10 superblock carry a "file is open for writing" flag that a killed job leaves set, and
// HDF5 then refuses to open the file until h5clear is run; the old superblock has no such flag,
// so a killed run's file opens for reading and resuming as it is.
#include "coordinator/results.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <type_traits>

#include "common/error.h"
#include "common/log.h"
#include "common/version.h"
#include "coordinator/hdf5_handles.h"
#include "coordinator/report.h"

namespace moe {
namespace {

using h5::Attribute;
using h5::Dataset;
using h5::Dataspace;
using h5::Datatype;
using h5::File;
using h5::Group;
using h5::PropList;

constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();
constexpr hsize_t kChunkRows = 512;

bool fileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// ---- types -------------------------------------------------------------------------------------

enum class Elem { I32, I64, U8, F32 };
enum class Shape { N, NE, NC, NEC };  // trailing dimensions after the question axis

hid_t memType(Elem e) {
  switch (e) {
    case Elem::I32: return H5T_NATIVE_INT32;
    case Elem::I64: return H5T_NATIVE_INT64;
    case Elem::U8: return H5T_NATIVE_UINT8;
    case Elem::F32: return H5T_NATIVE_FLOAT;
  }
  return H5T_NATIVE_INT32;
}
hid_t fileType(Elem e) {
  switch (e) {
    case Elem::I32: return H5T_STD_I32LE;
    case Elem::I64: return H5T_STD_I64LE;
    case Elem::U8: return H5T_STD_U8LE;
    case Elem::F32: return H5T_IEEE_F32LE;
  }
  return H5T_STD_I32LE;
}
size_t elemSize(Elem e) { return e == Elem::I64 ? 8 : e == Elem::U8 ? 1 : 4; }
H5T_class_t elemClass(Elem e) { return e == Elem::F32 ? H5T_FLOAT : H5T_INTEGER; }

template <typename T> hid_t nativeOf();
template <> hid_t nativeOf<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t nativeOf<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t nativeOf<uint64_t>() { return H5T_NATIVE_UINT64; }
template <> hid_t nativeOf<double>() { return H5T_NATIVE_DOUBLE; }
template <typename T> hid_t storedOf();
template <> hid_t storedOf<int32_t>() { return H5T_STD_I32LE; }
template <> hid_t storedOf<int64_t>() { return H5T_STD_I64LE; }
template <> hid_t storedOf<uint64_t>() { return H5T_STD_U64LE; }
template <> hid_t storedOf<double>() { return H5T_IEEE_F64LE; }

Datatype utf8StringType() {
  Datatype t(MOE_H5_ID(H5Tcopy(H5T_C_S1)));
  MOE_H5_CHECK(H5Tset_size(t.get(), H5T_VARIABLE));
  MOE_H5_CHECK(H5Tset_cset(t.get(), H5T_CSET_UTF8));
  return t;
}

Dataspace simpleSpace(const std::vector<hsize_t>& dims) {
  if (dims.empty()) return Dataspace(MOE_H5_ID(H5Screate(H5S_SCALAR)));
  return Dataspace(MOE_H5_ID(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
}

std::vector<hsize_t> extentOf(hid_t space) {
  int rank = MOE_H5_ID(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) MOE_H5_CHECK(H5Sget_simple_extent_dims(space, dims.data(), nullptr));
  return dims;
}

std::string shapeText(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// Reads strings of a dataset or attribute (variable-length or fixed-length) from `obj`.
std::vector<std::string> readStrings(hid_t obj, bool isAttribute, const std::string& where) {
  Datatype ftype(MOE_H5_ID(isAttribute ? H5Aget_type(obj) : H5Dget_type(obj)));
  MOE_CHECK(H5Tget_class(ftype.get()) == H5T_STRING, where, ": expected strings, found another type");
  Dataspace space(MOE_H5_ID(isAttribute ? H5Aget_space(obj) : H5Dget_space(obj)));
  hssize_t count = MOE_H5_ID(H5Sget_simple_extent_npoints(space.get()));
  std::vector<std::string> out;
  if (count == 0) return out;
  const size_t n = static_cast<size_t>(count);
  htri_t variable = MOE_H5_ID(H5Tis_variable_str(ftype.get()));
  if (variable > 0) {
    Datatype mtype = utf8StringType();
    std::vector<char*> buf(n, nullptr);
    MOE_H5_CHECK(isAttribute ? H5Aread(obj, mtype.get(), buf.data())
                             : H5Dread(obj, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
    for (char* p : buf) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, buf.data());
  } else {
    size_t size = H5Tget_size(ftype.get());
    MOE_CHECK(size > 0, where, ": fixed-length string type of size 0");
    Datatype mtype(MOE_H5_ID(H5Tcopy(H5T_C_S1)));
    MOE_H5_CHECK(H5Tset_size(mtype.get(), size));
    std::vector<char> buf(n * size);
    MOE_H5_CHECK(isAttribute ? H5Aread(obj, mtype.get(), buf.data())
                             : H5Dread(obj, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
    for (size_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * size;
      out.emplace_back(p, strnlen(p, size));
    }
  }
  return out;
}

// ---- attributes ---------------------------------------------------------------------------------

void deleteAttrIfPresent(hid_t loc, const char* name) {
  if (MOE_H5_ID(H5Aexists(loc, name)) > 0) MOE_H5_CHECK(H5Adelete(loc, name));
}

void writeStringsAttr(hid_t loc, const char* name, const std::vector<std::string>& v, bool scalar) {
  deleteAttrIfPresent(loc, name);
  Datatype t = utf8StringType();
  Dataspace space = scalar ? simpleSpace({}) : simpleSpace({v.size()});
  Attribute a(MOE_H5_ID(H5Acreate2(loc, name, t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  if (!ptrs.empty()) MOE_H5_CHECK(H5Awrite(a.get(), t.get(), ptrs.data()));
}
void writeAttr(hid_t loc, const char* name, const std::string& v) { writeStringsAttr(loc, name, {v}, true); }
void writeAttr(hid_t loc, const char* name, const std::vector<std::string>& v) {
  writeStringsAttr(loc, name, v, false);
}
template <typename T>
void writeNumberAttr(hid_t loc, const char* name, const std::vector<T>& v, bool scalar) {
  deleteAttrIfPresent(loc, name);
  Dataspace space = scalar ? simpleSpace({}) : simpleSpace({v.size()});
  Attribute a(MOE_H5_ID(H5Acreate2(loc, name, storedOf<T>(), space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  if (!v.empty()) MOE_H5_CHECK(H5Awrite(a.get(), nativeOf<T>(), v.data()));
}
template <typename T>
void writeScalarAttr(hid_t loc, const char* name, T v) { writeNumberAttr<T>(loc, name, {v}, true); }

// Reading, with messages naming the file and the attribute.
struct AttrReader {
  hid_t loc;
  std::string file;
  std::string object;  // "root" or "group 'summary'"

  Attribute open(const char* name) const {
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) h5::errorStackText();
    MOE_CHECK(ex > 0, file, ": missing ", object, " attribute '", name,
              "' (not a moe-dist results file, or written by an incompatible version)");
    return Attribute(MOE_H5_ID(H5Aopen(loc, name, H5P_DEFAULT)));
  }
  std::vector<std::string> strings(const char* name) const {
    Attribute a = open(name);
    return readStrings(a.get(), true, str(file, ": ", object, " attribute '", name, "'"));
  }
  std::string string(const char* name) const {
    auto v = strings(name);
    MOE_CHECK(v.size() == 1, file, ": ", object, " attribute '", name, "': expected one string, found ", v.size());
    return v[0];
  }
  template <typename T>
  std::vector<T> numbers(const char* name) const {
    Attribute a = open(name);
    Datatype t(MOE_H5_ID(H5Aget_type(a.get())));
    H5T_class_t cls = H5Tget_class(t.get());
    MOE_CHECK(cls == H5T_INTEGER || cls == H5T_FLOAT, file, ": ", object, " attribute '", name,
              "': expected a number, found another type");
    Dataspace s(MOE_H5_ID(H5Aget_space(a.get())));
    hssize_t n = MOE_H5_ID(H5Sget_simple_extent_npoints(s.get()));
    std::vector<T> v(static_cast<size_t>(n));
    if (n > 0) MOE_H5_CHECK(H5Aread(a.get(), nativeOf<T>(), v.data()));
    return v;
  }
  template <typename T>
  T number(const char* name) const {
    auto v = numbers<T>(name);
    MOE_CHECK(v.size() == 1, file, ": ", object, " attribute '", name, "': expected one value, found ", v.size());
    return v[0];
  }
};

// ---- string tables and plain datasets -----------------------------------------------------------

void writeStringDataset(hid_t loc, const char* name, const std::vector<std::string>& v) {
  Datatype t = utf8StringType();
  Dataspace space = simpleSpace({v.size()});
  Dataset d(MOE_H5_ID(H5Dcreate2(loc, name, t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  if (!ptrs.empty()) MOE_H5_CHECK(H5Dwrite(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()));
}

template <typename T>
void writeDataset(hid_t loc, const char* name, const std::vector<hsize_t>& dims, const std::vector<T>& v) {
  Dataspace space = simpleSpace(dims);
  Dataset d(MOE_H5_ID(H5Dcreate2(loc, name, storedOf<T>(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  if (!v.empty()) MOE_H5_CHECK(H5Dwrite(d.get(), nativeOf<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()));
}

Dataset openDataset(hid_t loc, const std::string& file, const char* name) {
  htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
  if (ex < 0) h5::errorStackText();
  MOE_CHECK(ex > 0, file, ": missing dataset '", name,
            "' (not a moe-dist results file, or written by an incompatible version)");
  hid_t id = H5Dopen2(loc, name, H5P_DEFAULT);
  MOE_CHECK(id >= 0, file, ": '", name, "' is not a readable dataset: ", h5::errorStackText());
  return Dataset(id);
}

std::vector<std::string> readStringDataset(hid_t loc, const std::string& file, const char* name) {
  Dataset d = openDataset(loc, file, name);
  Dataspace s(MOE_H5_ID(H5Dget_space(d.get())));
  MOE_CHECK(extentOf(s.get()).size() == 1, file, ": dataset '", name, "' must be one-dimensional, has shape ",
            shapeText(extentOf(s.get())));
  return readStrings(d.get(), false, str(file, ": dataset '", name, "'"));
}

// ---- per-question columns -------------------------------------------------------------------------

struct Dims {
  int e, c;
  size_t width(Shape s) const {
    switch (s) {
      case Shape::N: return 1;
      case Shape::NE: return static_cast<size_t>(e);
      case Shape::NC: return static_cast<size_t>(c);
      case Shape::NEC: return static_cast<size_t>(e) * static_cast<size_t>(c);
    }
    return 1;
  }
  std::vector<hsize_t> trailing(Shape s) const {
    switch (s) {
      case Shape::N: return {};
      case Shape::NE: return {hsize_t(e)};
      case Shape::NC: return {hsize_t(c)};
      case Shape::NEC: return {hsize_t(e), hsize_t(c)};
    }
    return {};
  }
};

// One dataset: how to copy a row's values in (`put`, `width` elements to `out`) and out (`get`).
struct Column {
  const char* name;
  Elem elem;
  Shape shape;
  std::function<void(const QuestionResult&, void* out)> put;
  std::function<void(QuestionResult&, const void* in, size_t width)> get;
  // Added after format 1's first files: a reader fills NaN where it is missing, resume adds it.
  bool optional = false;
};

template <typename T>
constexpr Elem elemOf() {
  if constexpr (std::is_same_v<T, int32_t>) return Elem::I32;
  else if constexpr (std::is_same_v<T, int64_t>) return Elem::I64;
  else if constexpr (std::is_same_v<T, uint8_t>) return Elem::U8;
  else return Elem::F32;
}

template <typename T>
Column scalarColumn(const char* name, T QuestionResult::*field) {
  return Column{name, elemOf<T>(), Shape::N,
                [field](const QuestionResult& r, void* out) { *static_cast<T*>(out) = r.*field; },
                [field](QuestionResult& r, const void* in, size_t) { r.*field = *static_cast<const T*>(in); }};
}
template <typename T>
Column vectorColumn(const char* name, Shape shape, std::vector<T> QuestionResult::*field) {
  return Column{name, elemOf<T>(), shape,
                [field](const QuestionResult& r, void* out) {
                  std::copy((r.*field).begin(), (r.*field).end(), static_cast<T*>(out));
                },
                [field](QuestionResult& r, const void* in, size_t width) {
                  const T* p = static_cast<const T*>(in);
                  (r.*field).assign(p, p + width);
                }};
}

// File order. `subject` is first and handled by the writer/reader (name <-> table index).
const std::vector<Column>& columns() {
  static const std::vector<Column> cols = {
      Column{"subject", Elem::I32, Shape::N, nullptr, nullptr},
      scalarColumn("index", &QuestionResult::index),
      scalarColumn("gold", &QuestionResult::gold),
      scalarColumn("num_choices", &QuestionResult::numChoices),
      scalarColumn("shots", &QuestionResult::shots),
      vectorColumn("prompt_tokens", Shape::NE, &QuestionResult::promptTokens),
      scalarColumn("prediction", &QuestionResult::prediction),
      Column{"correct", Elem::U8, Shape::N,
             [](const QuestionResult& r, void* out) { *static_cast<uint8_t*>(out) = r.correct ? 1 : 0; },
             [](QuestionResult& r, const void* in, size_t) { r.correct = *static_cast<const uint8_t*>(in) != 0; }},
      vectorColumn("weights", Shape::NE, &QuestionResult::weights),
      vectorColumn("expert_entropy", Shape::NE, &QuestionResult::expertEntropy),
      scalarColumn("mixture_entropy", &QuestionResult::mixtureEntropy),
      vectorColumn("expert_letter_probs", Shape::NEC, &QuestionResult::expertLetterProbs),
      vectorColumn("mixture_letter_probs", Shape::NC, &QuestionResult::mixtureLetterProbs),
      vectorColumn("expert_choice_probs", Shape::NEC, &QuestionResult::expertChoiceProbs),
      vectorColumn("mixture_choice_probs", Shape::NC, &QuestionResult::mixtureChoiceProbs),
      vectorColumn("expert_prediction", Shape::NE, &QuestionResult::expertPrediction),
      vectorColumn("expert_correct", Shape::NE, &QuestionResult::expertCorrect),
      vectorColumn("expert_vocab_choice", Shape::NE, &QuestionResult::expertVocabChoice),
      scalarColumn("mixture_vocab_choice", &QuestionResult::mixtureVocabChoice),
      vectorColumn("expert_letter_mass", Shape::NE, &QuestionResult::expertLetterMass),
      scalarColumn("mixture_letter_mass", &QuestionResult::mixtureLetterMass),
      Column{"gate_scores", Elem::F32, Shape::NE,
             [](const QuestionResult& r, void* out) {
               // No scores (no router): NaN. The writer checks the width of a non-empty vector.
               float* o = static_cast<float*>(out);
               if (!r.gateScores.empty()) std::copy(r.gateScores.begin(), r.gateScores.end(), o);
             },
             [](QuestionResult& r, const void* in, size_t width) {
               const float* p = static_cast<const float*>(in);
               r.gateScores.assign(p, p + width);
             },
             true},
  };
  return cols;
}

void createColumn(hid_t file, const Column& col, const Dims& dims) {
  std::vector<hsize_t> cur = {0}, max = {H5S_UNLIMITED}, chunk = {kChunkRows};
  for (hsize_t t : dims.trailing(col.shape)) {
    cur.push_back(t);
    max.push_back(t);
    chunk.push_back(t);
  }
  Dataspace space(MOE_H5_ID(H5Screate_simple(static_cast<int>(cur.size()), cur.data(), max.data())));
  PropList dcpl(MOE_H5_ID(H5Pcreate(H5P_DATASET_CREATE)));
  MOE_H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()));
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
    MOE_H5_CHECK(H5Pset_shuffle(dcpl.get()));
    MOE_H5_CHECK(H5Pset_deflate(dcpl.get(), 4));
  }
  if (col.elem == Elem::F32) MOE_H5_CHECK(H5Pset_fill_value(dcpl.get(), H5T_NATIVE_FLOAT, &kNaNf));
  Dataset d(MOE_H5_ID(H5Dcreate2(file, col.name, fileType(col.elem), space.get(), H5P_DEFAULT, dcpl.get(),
                                 H5P_DEFAULT)));
}

// Opens a per-question dataset and checks its type class and trailing dimensions; returns its
// number of rows.
hsize_t checkColumn(hid_t file, const std::string& path, const Column& col, const Dims& dims, Dataset& out) {
  out = openDataset(file, path, col.name);
  Datatype t(MOE_H5_ID(H5Dget_type(out.get())));
  MOE_CHECK(H5Tget_class(t.get()) == elemClass(col.elem), path, ": dataset '", col.name, "' has the wrong type (expected ",
            col.elem == Elem::F32 ? "floating point" : "integer", ")");
  Dataspace s(MOE_H5_ID(H5Dget_space(out.get())));
  std::vector<hsize_t> got = extentOf(s.get());
  std::vector<hsize_t> want = dims.trailing(col.shape);
  bool ok = got.size() == want.size() + 1 && std::equal(want.begin(), want.end(), got.begin() + 1);
  std::string wantText = "[N";
  for (hsize_t w : want) wantText += "," + std::to_string(w);
  MOE_CHECK(ok, path, ": dataset '", col.name, "' has shape ", shapeText(got), ", expected ", wantText,
            "] (E=", dims.e, " experts, C=", dims.c, " choices)");
  return got[0];
}

void readColumnRows(hid_t d, const Column& col, const Dims& dims, hsize_t n, std::vector<unsigned char>& buf) {
  const size_t width = dims.width(col.shape);
  buf.resize(static_cast<size_t>(n) * width * elemSize(col.elem));
  if (n == 0) return;
  Dataspace fs(MOE_H5_ID(H5Dget_space(d)));
  std::vector<hsize_t> start(extentOf(fs.get()).size(), 0), count = {n};
  for (hsize_t t : dims.trailing(col.shape)) count.push_back(t);
  MOE_H5_CHECK(H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr));
  Dataspace ms(MOE_H5_ID(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr)));
  MOE_H5_CHECK(H5Dread(d, memType(col.elem), ms.get(), fs.get(), H5P_DEFAULT, buf.data()));
}

// ---- header -------------------------------------------------------------------------------------

std::string listText(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}
std::string numberText(double x) {
  std::ostringstream os;
  os.precision(17);
  os << x;
  return os.str();
}

void validateHeader(const ResultsHeader& h, const std::string& path) {
  const size_t e = h.experts.size();
  MOE_CHECK(e >= 1, path, ": results header needs at least one expert");
  MOE_CHECK(h.models.size() == e, path, ": results header has ", h.models.size(), " models and ", e,
            " expert names; expected one name per model");
  MOE_CHECK(h.modelHashes.size() == e, path, ": results header has ", h.modelHashes.size(), " model hashes for ", e,
            " models; expected one per model");
  MOE_CHECK(h.weights.empty() || h.weights.size() == e, path, ": results header has ", h.weights.size(),
            " weights for ", e, " experts; expected none (uniform) or one per expert");
  MOE_CHECK(h.maxChoices >= 1 && h.maxChoices <= 26, path, ": maxChoices must be in [1, 26], got ", h.maxChoices);
  MOE_CHECK(!h.subjects.empty(), path, ": results header has an empty subject table");
  std::set<std::string> seen;
  for (const auto& s : h.subjects)
    MOE_CHECK(seen.insert(s.subject).second, path, ": subject '", s.subject, "' appears twice in the subject table");
  MOE_CHECK(h.scoring == "letters" || h.scoring == "vocab", path, ": scoring must be letters or vocab, got '",
            h.scoring, "'");
  MOE_CHECK(h.mixtureSpace == "full-vocabulary" || h.mixtureSpace == "answer-letters", path,
            ": mixture space must be full-vocabulary or answer-letters, got '", h.mixtureSpace, "'");
}

void writeHeaderAttributes(hid_t f, const ResultsHeader& h) {
  writeScalarAttr<int32_t>(f, "format_version", kResultsFormatVersion);
  writeAttr(f, "models", h.models);
  writeAttr(f, "model_hashes", h.modelHashes);
  writeAttr(f, "mode", h.mode);
  writeNumberAttr<double>(f, "weights", h.weights, false);
  writeAttr(f, "scoring", h.scoring);
  writeAttr(f, "prompt_style", h.promptStyle);
  writeAttr(f, "mixture_space", h.mixtureSpace);
  writeAttr(f, "command_line", h.commandLine);
  writeAttr(f, "config_yaml", h.configYaml);
  writeAttr(f, "version", h.version);
  writeScalarAttr<int32_t>(f, "ranks", h.ranks);
  writeAttr(f, "devices", h.devices);
  writeAttr(f, "start_time", h.startTime);
  writeAttr(f, "end_time", h.endTime);
  writeAttr(f, "split", h.split);
  writeScalarAttr<int32_t>(f, "shots", h.shots);
  writeAttr(f, "data_root", h.dataRoot);
  writeAttr(f, "status", h.status);
  writeAttr(f, "resume_times", h.resumeTimes);
  writeScalarAttr<int32_t>(f, "max_choices", h.maxChoices);
  writeAttr(f, "gate_policy", h.gatePolicy.empty() ? std::string("none") : h.gatePolicy);
  writeAttr(f, "gate_config", h.gateConfig);
  writeScalarAttr<int32_t>(f, "gate_top_k", h.gateTopK);
  writeScalarAttr<double>(f, "gate_temperature", h.gateTemperature);
  writeAttr(f, "combined_from", h.combinedFrom);
}

ResultsHeader readHeader(hid_t f, const std::string& path) {
  AttrReader a{f, path, "root"};
  int version = a.number<int32_t>("format_version");
  MOE_CHECK(version >= 1 && version <= kResultsFormatVersion, path, ": results format version ", version,
            " is not supported by this moe-dist (reads versions 1..", kResultsFormatVersion, ")");
  ResultsHeader h;
  h.models = a.strings("models");
  h.modelHashes = a.strings("model_hashes");
  h.mode = a.string("mode");
  h.weights = a.numbers<double>("weights");
  h.scoring = a.string("scoring");
  h.promptStyle = a.string("prompt_style");
  h.mixtureSpace = a.string("mixture_space");
  h.commandLine = a.string("command_line");
  h.configYaml = a.string("config_yaml");
  h.version = a.string("version");
  h.ranks = a.number<int32_t>("ranks");
  h.devices = a.strings("devices");
  h.startTime = a.string("start_time");
  h.endTime = a.string("end_time");
  h.split = a.string("split");
  h.shots = a.number<int32_t>("shots");
  h.dataRoot = a.string("data_root");
  h.status = a.string("status");
  h.resumeTimes = a.strings("resume_times");
  h.maxChoices = a.number<int32_t>("max_choices");
  // Gate attributes came with gated mixtures; a file without them had static weights.
  auto has = [&](const char* name) { return MOE_H5_ID(H5Aexists(f, name)) > 0; };
  if (has("gate_policy")) {
    h.gatePolicy = a.string("gate_policy");
    if (h.gatePolicy == "none") h.gatePolicy.clear();
  }
  if (has("gate_config")) h.gateConfig = a.string("gate_config");
  if (has("gate_top_k")) h.gateTopK = a.number<int32_t>("gate_top_k");
  if (has("gate_temperature")) h.gateTemperature = a.number<double>("gate_temperature");
  if (has("combined_from")) h.combinedFrom = a.string("combined_from");
  h.experts = readStringDataset(f, path, "experts");
  auto subjects = readStringDataset(f, path, "subjects");
  auto categories = readStringDataset(f, path, "subject_categories");
  auto subcategories = readStringDataset(f, path, "subject_subcategories");
  MOE_CHECK(categories.size() == subjects.size() && subcategories.size() == subjects.size(), path,
            ": datasets 'subjects', 'subject_categories' and 'subject_subcategories' have ", subjects.size(), ", ",
            categories.size(), " and ", subcategories.size(), " entries; expected the same number");
  for (size_t i = 0; i < subjects.size(); ++i)
    h.subjects.push_back(SubjectInfo{subjects[i], subcategories[i], categories[i], classifySubject(subjects[i]).known});
  MOE_CHECK(!h.experts.empty(), path, ": dataset 'experts' is empty; expected one name per model");
  MOE_CHECK(h.models.size() == h.experts.size() && h.modelHashes.size() == h.experts.size(), path,
            ": root attributes 'models' (", h.models.size(), ") and 'model_hashes' (", h.modelHashes.size(),
            ") must have one entry per expert (", h.experts.size(), ")");
  MOE_CHECK(h.maxChoices >= 1 && h.maxChoices <= 26, path, ": root attribute 'max_choices' is ", h.maxChoices,
            ", expected 1..26");
  return h;
}

// Reads all rows (the first `n` of every dataset, n = the shortest) and checks them.
std::vector<QuestionResult> readRows(hid_t f, const std::string& path, const ResultsHeader& h) {
  const Dims dims{static_cast<int>(h.experts.size()), h.maxChoices};
  const auto& cols = columns();
  std::vector<Dataset> ds(cols.size());
  std::vector<hsize_t> lengths;
  std::vector<bool> present(cols.size(), true);
  for (size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].optional && MOE_H5_ID(H5Lexists(f, cols[i].name, H5P_DEFAULT)) <= 0) {
      present[i] = false;  // an older file: the column reads as NaN
      continue;
    }
    lengths.push_back(checkColumn(f, path, cols[i], dims, ds[i]));
  }
  const hsize_t n = *std::min_element(lengths.begin(), lengths.end());
  const hsize_t longest = *std::max_element(lengths.begin(), lengths.end());
  if (longest != n)
    logWarn(path, ": per-question datasets have between ", n, " and ", longest,
            " rows (a job stopped in the middle of an append); reading the ", n, " complete rows");
  std::vector<QuestionResult> rows(static_cast<size_t>(n));
  std::vector<unsigned char> buf;
  for (size_t i = 0; i < cols.size(); ++i) {
    const Column& col = cols[i];
    if (!present[i]) {
      const std::vector<float> nan(dims.width(col.shape), kNaNf);
      for (auto& r : rows) col.get(r, nan.data(), nan.size());
      continue;
    }
    readColumnRows(ds[i].get(), col, dims, n, buf);
    const size_t width = dims.width(col.shape), stride = width * elemSize(col.elem);
    for (size_t r = 0; r < rows.size(); ++r) {
      const void* p = buf.data() + r * stride;
      if (i == 0) {
        int32_t s = *static_cast<const int32_t*>(p);
        MOE_CHECK(s >= 0 && static_cast<size_t>(s) < h.subjects.size(), path, ": dataset 'subject' row ", r,
                  ": subject index ", s, " is outside the subject table [0, ", h.subjects.size(), ")");
        rows[r].subject = h.subjects[static_cast<size_t>(s)].subject;
      } else {
        col.get(rows[r], p, width);
      }
    }
  }
  std::map<std::pair<std::string, int64_t>, size_t> firstRow;
  for (size_t r = 0; r < rows.size(); ++r) {
    auto [it, fresh] = firstRow.emplace(std::make_pair(rows[r].subject, rows[r].index), r);
    MOE_CHECK(fresh, path, ": row ", r, " repeats question (", rows[r].subject, ", index ", rows[r].index,
              ") first written at row ", it->second, "; each question must appear once");
    MOE_CHECK(rows[r].numChoices >= 1 && rows[r].numChoices <= h.maxChoices, path, ": dataset 'num_choices' row ", r,
              ": ", rows[r].numChoices, " is outside [1, max_choices=", h.maxChoices, "]");
  }
  return rows;
}

File openExisting(const std::string& path, unsigned flags) {
  h5::initHdf5();
  MOE_CHECK(fileExists(path), "results file ", path, " does not exist");
  htri_t isH5 = H5Fis_hdf5(path.c_str());
  if (isH5 < 0) h5::errorStackText();
  MOE_CHECK(isH5 > 0, path, " is not an HDF5 file (expected a moe-dist results file)");
  hid_t id = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
  MOE_CHECK(id >= 0, "cannot open results file ", path, (flags == H5F_ACC_RDWR ? " for writing" : ""), ": ",
            h5::errorStackText());
  return File(id);
}

// ---- summary ---------------------------------------------------------------------------------------

void writeAccuracyRows(hid_t g, const std::string& prefix, const std::vector<AccuracyRow>& rows, size_t m) {
  std::vector<std::string> names;
  std::vector<int64_t> n, correct;
  std::vector<double> acc, se;
  for (const auto& r : rows) {
    names.push_back(r.name);
    n.push_back(r.n);
    for (size_t j = 0; j < m; ++j) {
      correct.push_back(r.cells[j].correct);
      acc.push_back(r.cells[j].value);
      se.push_back(r.cells[j].se);
    }
  }
  const hsize_t k = rows.size();
  writeStringDataset(g, (prefix + "_names").c_str(), names);
  writeDataset<int64_t>(g, (prefix + "_n").c_str(), {k}, n);
  writeDataset<int64_t>(g, (prefix + "_correct").c_str(), {k, m}, correct);
  writeDataset<double>(g, (prefix + "_accuracy").c_str(), {k, m}, acc);
  writeDataset<double>(g, (prefix + "_stderr").c_str(), {k, m}, se);
}

// summary/routing (gated runs): the report's routing table, rows overall, categories, subjects.
void writeRouting(hid_t summary, const RoutingSummary& rt) {
  Group g(MOE_H5_ID(H5Gcreate2(summary, "routing", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  writeAttr(g.get(), "policy", rt.policy);
  std::vector<const RoutingRow*> rows = {&rt.overall};
  std::vector<std::string> sections = {"overall"};
  for (const auto& r : rt.categories) {
    rows.push_back(&r);
    sections.push_back("category");
  }
  for (const auto& r : rt.subjects) {
    rows.push_back(&r);
    sections.push_back("subject");
  }
  const hsize_t k = rows.size(), e = rt.overall.meanWeight.size();
  std::vector<std::string> names;
  std::vector<int64_t> n, top1, oracle;
  std::vector<double> weight, share, top1Acc, oracleAcc;
  for (const RoutingRow* r : rows) {
    names.push_back(r->name);
    n.push_back(r->n);
    weight.insert(weight.end(), r->meanWeight.begin(), r->meanWeight.end());
    share.insert(share.end(), r->topShare.begin(), r->topShare.end());
    top1.push_back(r->top1.correct);
    oracle.push_back(r->oracle.correct);
    top1Acc.push_back(r->top1.value);
    oracleAcc.push_back(r->oracle.value);
  }
  writeStringDataset(g.get(), "names", names);
  writeStringDataset(g.get(), "sections", sections);
  writeDataset<int64_t>(g.get(), "n", {k}, n);
  writeDataset<double>(g.get(), "mean_weight", {k, e}, weight);
  writeDataset<double>(g.get(), "top1_share", {k, e}, share);
  writeDataset<int64_t>(g.get(), "gate_top1_correct", {k}, top1);
  writeDataset<double>(g.get(), "gate_top1_accuracy", {k}, top1Acc);
  writeDataset<int64_t>(g.get(), "oracle_correct", {k}, oracle);
  writeDataset<double>(g.get(), "oracle_accuracy", {k}, oracleAcc);
}

// A fresh group `name` at the root, replacing one an earlier segment wrote.
Group replaceGroup(hid_t f, const char* name) {
  if (MOE_H5_ID(H5Lexists(f, name, H5P_DEFAULT)) > 0) MOE_H5_CHECK(H5Ldelete(f, name, H5P_DEFAULT));
  return Group(MOE_H5_ID(H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
}

// One field of every row, as a dataset's values.
template <typename Row, typename Field>
auto column(const std::vector<Row>& rows, Field field) {
  std::vector<std::decay_t<decltype(field(rows.front()))>> v;
  v.reserve(rows.size());
  for (const Row& r : rows) v.push_back(field(r));
  return v;
}

void writeSummary(hid_t f, const RunSummary& s) {
  Group g = replaceGroup(f, "summary");
  const size_t m = s.columns.size();
  writeAttr(g.get(), "scoring", s.scoring);
  writeScalarAttr<int64_t>(g.get(), "questions", s.questions);
  writeScalarAttr<int32_t>(g.get(), "subjects", s.macro.cells.empty() ? 0 : s.macro.groups);
  writeAttr(g.get(), "micro_stderr_method", std::string("binomial: sqrt(p (1 - p) / n)"));
  writeAttr(g.get(), "macro_stderr_method",
            std::string("propagated per-subject binomial errors: sqrt(sum_s p_s (1 - p_s) / n_s) / k"));
  writeStringDataset(g.get(), "columns", s.columns);
  writeAccuracyRows(g.get(), "subject", s.subjects, m);
  writeAccuracyRows(g.get(), "category", s.categories, m);
  std::vector<double> microAcc, microSe, macroAcc, macroSe;
  std::vector<int64_t> microCorrect;
  for (size_t j = 0; j < m; ++j) {
    microAcc.push_back(s.micro.cells[j].value);
    microSe.push_back(s.micro.cells[j].se);
    microCorrect.push_back(s.micro.cells[j].correct);
    macroAcc.push_back(s.macro.cells[j].value);
    macroSe.push_back(s.macro.cells[j].se);
  }
  writeDataset<int64_t>(g.get(), "micro_correct", {m}, microCorrect);
  writeDataset<double>(g.get(), "micro_accuracy", {m}, microAcc);
  writeDataset<double>(g.get(), "micro_stderr", {m}, microSe);
  writeDataset<double>(g.get(), "macro_accuracy", {m}, macroAcc);
  writeDataset<double>(g.get(), "macro_stderr", {m}, macroSe);
  writeDataset<double>(g.get(), "expert_letter_mass_mean", {s.expertLetterMass.size()}, s.expertLetterMass);
  writeDataset<double>(g.get(), "mixture_letter_mass_mean", {}, {s.mixtureLetterMass});
  if (s.routing.gated) writeRouting(g.get(), s.routing);

  const MixtureComparison& c = s.comparison;
  Group cg(MOE_H5_ID(H5Gcreate2(g.get(), "mixture_vs_best", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  hid_t h = cg.get();
  writeScalarAttr<int32_t>(h, "best_expert", c.bestExpert);
  writeAttr(h, "best_expert_name", c.bestExpertName);
  writeScalarAttr<int64_t>(h, "n", c.mixture.n);
  writeScalarAttr<double>(h, "mixture_accuracy", c.mixture.value);
  writeScalarAttr<double>(h, "expert_accuracy", c.expert.value);
  writeScalarAttr<double>(h, "difference", c.ci.difference);
  writeScalarAttr<double>(h, "ci_low", c.ci.low);
  writeScalarAttr<double>(h, "ci_high", c.ci.high);
  writeScalarAttr<double>(h, "ci_level", c.ci.level);
  writeScalarAttr<int32_t>(h, "bootstrap_resamples", c.ci.resamples);
  writeScalarAttr<uint64_t>(h, "bootstrap_seed", c.ci.seed);
  writeScalarAttr<int64_t>(h, "mcnemar_b", c.test.b);
  writeScalarAttr<int64_t>(h, "mcnemar_c", c.test.c);
  writeScalarAttr<double>(h, "mcnemar_statistic", c.test.statistic);
  writeScalarAttr<double>(h, "mcnemar_p", c.test.p);
  writeAttr(h, "mcnemar_method", c.test.method());
  writeAttr(h, "mcnemar_rule", str("exact binomial when b + c < ", stats::kMcNemarExactBelow,
                                   ", otherwise chi-square with continuity correction (|b - c| - 1)^2 / (b + c)"));
}

// ---- costs: groups `ranks` (one row per segment and rank) and `timing` (one row per batch) --------

// Reads a numeric dataset of `loc` whose shape must be [n] (width 0) or [n, width].
template <typename T>
std::vector<T> readNumbers(hid_t loc, const std::string& file, const std::string& where, const char* name, hsize_t n,
                           hsize_t width) {
  Dataset d = openDataset(loc, file, name);
  Dataspace s(MOE_H5_ID(H5Dget_space(d.get())));
  const std::vector<hsize_t> got = extentOf(s.get());
  const std::vector<hsize_t> want = width == 0 ? std::vector<hsize_t>{n} : std::vector<hsize_t>{n, width};
  MOE_CHECK(got == want, file, ": dataset '", where, "/", name, "' has shape ", shapeText(got), ", expected ",
            shapeText(want));
  Datatype t(MOE_H5_ID(H5Dget_type(d.get())));
  const H5T_class_t cls = H5Tget_class(t.get());
  MOE_CHECK(cls == H5T_INTEGER || cls == H5T_FLOAT, file, ": dataset '", where, "/", name, "' is not numeric");
  std::vector<T> v(static_cast<size_t>(n * std::max<hsize_t>(width, 1)));
  if (!v.empty()) MOE_H5_CHECK(H5Dread(d.get(), nativeOf<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()));
  return v;
}

bool hasLink(hid_t loc, const char* name) { return MOE_H5_ID(H5Lexists(loc, name, H5P_DEFAULT)) > 0; }

std::vector<RankCost> readRankCosts(hid_t f, const std::string& path) {
  std::vector<RankCost> out;
  if (!hasLink(f, "ranks")) return out;
  Group g(MOE_H5_ID(H5Gopen2(f, "ranks", H5P_DEFAULT)));
  const hid_t h = g.get();
  const std::vector<std::string> hosts = readStringDataset(h, path, "host");
  const hsize_t n = hosts.size();
  const auto devices = readStringDataset(h, path, "device");
  const auto models = readStringDataset(h, path, "model");
  MOE_CHECK(devices.size() == n && models.size() == n, path, ": group 'ranks': host, device and model have ", n, ", ",
            devices.size(), " and ", models.size(), " entries; expected the same number");
  auto i32 = [&](const char* name) { return readNumbers<int32_t>(h, path, "ranks", name, n, 0); };
  auto i64 = [&](const char* name) { return readNumbers<int64_t>(h, path, "ranks", name, n, 0); };
  auto f64 = [&](const char* name) { return readNumbers<double>(h, path, "ranks", name, n, 0); };
  const auto segment = i32("segment"), rank = i32("rank"), group = i32("group"), expert = i32("expert");
  const auto modelBytes = i64("model_bytes");
  out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    RankCost& c = out[i];
    c.segment = segment[i];
    c.rank = rank[i];
    c.group = group[i];
    c.expert = expert[i];
    c.host = hosts[i];
    c.device = devices[i];
    c.model = models[i];
    c.modelBytes = modelBytes[i];
  }
  for (const auto& [name, count] : kRankCostCounts) {
    const auto values = i64(name);
    for (size_t i = 0; i < n; ++i) out[i].*count = values[i];
  }
  for (const auto& [name, seconds] : kRankCostSeconds) {
    const auto values = f64(name);
    for (size_t i = 0; i < n; ++i) out[i].*seconds = values[i];
  }
  return out;
}

std::vector<BatchTiming> readBatchTimings(hid_t f, const std::string& path, hsize_t e) {
  std::vector<BatchTiming> out;
  if (!hasLink(f, "timing")) return out;
  Group g(MOE_H5_ID(H5Gopen2(f, "timing", H5P_DEFAULT)));
  const hid_t h = g.get();
  Dataset probe = openDataset(h, path, "segment");
  Dataspace ps(MOE_H5_ID(H5Dget_space(probe.get())));
  const std::vector<hsize_t> ext = extentOf(ps.get());
  MOE_CHECK(ext.size() == 1, path, ": dataset 'timing/segment' must be one-dimensional, has shape ", shapeText(ext));
  const hsize_t n = ext[0];
  auto i32 = [&](const char* name) { return readNumbers<int32_t>(h, path, "timing", name, n, 0); };
  auto f64 = [&](const char* name) { return readNumbers<double>(h, path, "timing", name, n, 0); };
  auto i64e = [&](const char* name) { return readNumbers<int64_t>(h, path, "timing", name, n, e); };
  auto f64e = [&](const char* name) { return readNumbers<double>(h, path, "timing", name, n, e); };
  const auto segment = i32("segment"), group = i32("group"), subject = i32("subject"), questions = i32("questions");
  const auto firstRow = readNumbers<int64_t>(h, path, "timing", "first_row", n, 0);
  const auto prompt = i64e("prompt_tokens"), computed = i64e("computed_tokens"), cached = i64e("cached_tokens");
  const auto tok = f64e("tokenize_seconds"), fwd = f64e("forward_seconds");
  const auto wait = f64("wait_seconds"), reduce = f64("reduce_seconds"), batch = f64("batch_seconds"),
             write = f64("write_seconds");
  for (size_t i = 0; i < n; ++i) {
    BatchTiming t;
    t.segment = segment[i];
    t.group = group[i];
    t.subject = subject[i];
    t.questions = questions[i];
    t.firstRow = firstRow[i];
    auto row = [&](const auto& v) { return std::vector<std::decay_t<decltype(v[0])>>(v.begin() + i * e, v.begin() + (i + 1) * e); };
    t.promptTokens = row(prompt);
    t.computedTokens = row(computed);
    t.cachedTokens = row(cached);
    t.tokenizeSeconds = row(tok);
    t.forwardSeconds = row(fwd);
    t.waitSeconds = wait[i];
    t.reduceSeconds = reduce[i];
    t.batchSeconds = batch[i];
    t.writeSeconds = write[i];
    out.push_back(std::move(t));
  }
  return out;
}

void writeRankCosts(hid_t f, const std::vector<RankCost>& rows) {
  Group g = replaceGroup(f, "ranks");
  const hid_t h = g.get();
  const hsize_t n = rows.size();
  auto col = [&](auto field) { return column(rows, field); };
  writeDataset<int32_t>(h, "segment", {n}, col([](const RankCost& r) { return r.segment; }));
  writeDataset<int32_t>(h, "rank", {n}, col([](const RankCost& r) { return r.rank; }));
  writeDataset<int32_t>(h, "group", {n}, col([](const RankCost& r) { return r.group; }));
  writeDataset<int32_t>(h, "expert", {n}, col([](const RankCost& r) { return r.expert; }));
  writeStringDataset(h, "host", col([](const RankCost& r) { return r.host; }));
  writeStringDataset(h, "device", col([](const RankCost& r) { return r.device; }));
  writeStringDataset(h, "model", col([](const RankCost& r) { return r.model; }));
  writeDataset<int64_t>(h, "model_bytes", {n}, col([](const RankCost& r) { return r.modelBytes; }));
  for (const auto& [name, count] : kRankCostCounts)
    writeDataset<int64_t>(h, name, {n}, col([count = count](const RankCost& r) { return r.*count; }));
  for (const auto& [name, seconds] : kRankCostSeconds)
    writeDataset<double>(h, name, {n}, col([seconds = seconds](const RankCost& r) { return r.*seconds; }));
  writeDataset<double>(h, "tokens_per_second", {n}, col([](const RankCost& r) { return r.tokensPerSecond(); }));
}

void writeBatchTimings(hid_t f, const std::vector<BatchTiming>& rows, size_t e) {
  Group g = replaceGroup(f, "timing");
  const hid_t h = g.get();
  const hsize_t n = rows.size();
  auto col = [&](auto field) { return column(rows, field); };
  auto wide = [&](auto field, const char* name) {
    using T = typename std::decay_t<decltype(field(rows[0]))>::value_type;
    std::vector<T> v;
    for (const auto& r : rows) {
      const auto& x = field(r);
      MOE_CHECK(x.size() == e, "timing/", name, ": a batch has ", x.size(), " values, expected one per expert (", e,
                ")");
      v.insert(v.end(), x.begin(), x.end());
    }
    writeDataset<T>(h, name, {n, hsize_t(e)}, v);
  };
  writeDataset<int32_t>(h, "segment", {n}, col([](const BatchTiming& r) { return r.segment; }));
  writeDataset<int32_t>(h, "group", {n}, col([](const BatchTiming& r) { return r.group; }));
  writeDataset<int32_t>(h, "subject", {n}, col([](const BatchTiming& r) { return r.subject; }));
  writeDataset<int32_t>(h, "questions", {n}, col([](const BatchTiming& r) { return r.questions; }));
  writeDataset<int64_t>(h, "first_row", {n}, col([](const BatchTiming& r) { return r.firstRow; }));
  wide([](const BatchTiming& r) -> const std::vector<int64_t>& { return r.promptTokens; }, "prompt_tokens");
  wide([](const BatchTiming& r) -> const std::vector<int64_t>& { return r.computedTokens; }, "computed_tokens");
  wide([](const BatchTiming& r) -> const std::vector<int64_t>& { return r.cachedTokens; }, "cached_tokens");
  wide([](const BatchTiming& r) -> const std::vector<double>& { return r.tokenizeSeconds; }, "tokenize_seconds");
  wide([](const BatchTiming& r) -> const std::vector<double>& { return r.forwardSeconds; }, "forward_seconds");
  writeDataset<double>(h, "wait_seconds", {n}, col([](const BatchTiming& r) { return r.waitSeconds; }));
  writeDataset<double>(h, "reduce_seconds", {n}, col([](const BatchTiming& r) { return r.reduceSeconds; }));
  writeDataset<double>(h, "batch_seconds", {n}, col([](const BatchTiming& r) { return r.batchSeconds; }));
  writeDataset<double>(h, "write_seconds", {n}, col([](const BatchTiming& r) { return r.writeSeconds; }));
}

}  // namespace

// ---- public -------------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> answerAffectingAttributes(const ResultsHeader& h) {
  std::vector<std::string> weights, subjects;
  for (double w : h.weights) weights.push_back(numberText(w));
  for (const auto& s : h.subjects) subjects.push_back(s.subject);
  return {
      {"models", listText(h.models)},
      {"model_hashes", listText(h.modelHashes)},
      {"mode", h.mode},
      {"weights", listText(weights)},
      {"scoring", h.scoring},
      {"prompt_style", h.promptStyle},
      {"mixture_space", h.mixtureSpace},
      {"split", h.split},
      {"shots", std::to_string(h.shots)},
      {"data_root", h.dataRoot},
      {"experts", listText(h.experts)},
      {"max_choices", std::to_string(h.maxChoices)},
      {"subjects", listText(subjects)},
      {"gate_config", h.gateConfig},
  };
}

double RankCost::tokensPerSecond() const {
  return forwardSeconds > 0 ? static_cast<double>(computedTokens) / forwardSeconds
                            : std::numeric_limits<double>::quiet_NaN();
}

std::string isoTimeUtcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct ResultsWriter::Impl {
  File file;
  std::vector<Dataset> datasets;  // parallel to columns()
  std::map<std::string, int32_t> subjectIndex;
  Dims dims{1, 1};

  void openDatasets(const std::string& path) {
    datasets.clear();
    datasets.resize(columns().size());
    for (size_t i = 0; i < columns().size(); ++i) {
      const Column& col = columns()[i];
      // A file from before an optional column: add it (NaN rows; resume extends it to the rows).
      if (col.optional && MOE_H5_ID(H5Lexists(file.get(), col.name, H5P_DEFAULT)) <= 0)
        createColumn(file.get(), col, dims);
      checkColumn(file.get(), path, col, dims, datasets[i]);
    }
  }
};

ResultsWriter::ResultsWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ResultsWriter::ResultsWriter(ResultsWriter&&) noexcept = default;
ResultsWriter& ResultsWriter::operator=(ResultsWriter&&) noexcept = default;
ResultsWriter::~ResultsWriter() = default;

ResultsWriter ResultsWriter::create(const std::string& path, const ResultsHeader& header, bool overwrite) {
  h5::initHdf5();
  validateHeader(header, path);
  MOE_CHECK(overwrite || !fileExists(path), "results file ", path,
            " already exists: pass --overwrite to replace it or --resume to continue it");
  auto impl = std::make_unique<Impl>();
  hid_t id = H5Fcreate(path.c_str(), overwrite ? H5F_ACC_TRUNC : H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  MOE_CHECK(id >= 0, "cannot create results file ", path, ": ", h5::errorStackText());
  impl->file = File(id);
  ResultsHeader h = header;
  if (h.version.empty()) h.version = MOE_VERSION;
  if (h.startTime.empty()) h.startTime = isoTimeUtcNow();
  h.endTime.clear();
  h.status = "running";
  h.resumeTimes.clear();
  const hid_t f = impl->file.get();
  try {
    writeHeaderAttributes(f, h);
    writeStringDataset(f, "experts", h.experts);
    std::vector<std::string> names, cats, subcats;
    for (const auto& s : h.subjects) {
      names.push_back(s.subject);
      cats.push_back(s.category);
      subcats.push_back(s.subcategory);
    }
    writeStringDataset(f, "subjects", names);
    writeStringDataset(f, "subject_categories", cats);
    writeStringDataset(f, "subject_subcategories", subcats);
    impl->dims = Dims{static_cast<int>(h.experts.size()), h.maxChoices};
    for (const auto& col : columns()) createColumn(f, col, impl->dims);
    impl->openDatasets(path);
    MOE_H5_CHECK(H5Fflush(f, H5F_SCOPE_LOCAL));
  } catch (const Error& e) {
    MOE_THROW("cannot write results file ", path, ": ", e.what());
  }
  for (size_t i = 0; i < h.subjects.size(); ++i) impl->subjectIndex[h.subjects[i].subject] = static_cast<int32_t>(i);
  ResultsWriter w(std::move(impl));
  w.path_ = path;
  w.header_ = std::move(h);
  return w;
}

ResultsWriter ResultsWriter::resume(const std::string& path, const ResultsHeader& expected) {
  auto impl = std::make_unique<Impl>();
  impl->file = openExisting(path, H5F_ACC_RDWR);
  const hid_t f = impl->file.get();
  ResultsHeader h = readHeader(f, path);
  auto have = answerAffectingAttributes(h), want = answerAffectingAttributes(expected);
  std::string diffs;
  for (size_t i = 0; i < have.size(); ++i)
    if (have[i].second != want[i].second)
      diffs += str(diffs.empty() ? "" : "; ", "attribute '", have[i].first, "' differs (file: ", have[i].second,
                   ", this run: ", want[i].second, ")");
  MOE_CHECK(diffs.empty(), "results file ", path, " was written by a different configuration and cannot be resumed: ",
            diffs, ". Use a new --output, or --overwrite to start again");
  for (size_t i = 0; i < h.subjects.size(); ++i) impl->subjectIndex[h.subjects[i].subject] = static_cast<int32_t>(i);
  impl->dims = Dims{static_cast<int>(h.experts.size()), h.maxChoices};
  impl->openDatasets(path);

  // Trim a row set left uneven by a kill during an append, so every dataset has the same rows.
  std::vector<QuestionResult> rows = readRows(f, path, h);
  const hsize_t n = rows.size();
  for (size_t i = 0; i < columns().size(); ++i) {
    Dataspace s(MOE_H5_ID(H5Dget_space(impl->datasets[i].get())));
    std::vector<hsize_t> ext = extentOf(s.get());
    if (ext[0] != n) {
      ext[0] = n;
      MOE_H5_CHECK(H5Dset_extent(impl->datasets[i].get(), ext.data()));
    }
  }
  ResultsWriter w(std::move(impl));
  for (const auto& r : rows) w.done_.emplace(r.subject, r.index);
  w.rows_ = static_cast<int64_t>(n);
  h.status = "running";
  h.endTime.clear();
  h.resumeTimes.push_back(isoTimeUtcNow());
  writeAttr(f, "status", h.status);
  writeAttr(f, "end_time", h.endTime);
  writeAttr(f, "resume_times", h.resumeTimes);
  MOE_H5_CHECK(H5Fflush(f, H5F_SCOPE_LOCAL));
  w.path_ = path;
  w.header_ = std::move(h);
  logInfo("resuming ", path, ": ", n, " questions already written");
  return w;
}

void ResultsWriter::append(const std::vector<QuestionResult>& batch) {
  MOE_CHECK(impl_ && impl_->file, "results file ", path_, ": append after finish()");
  if (batch.empty()) return;
  const Dims& dims = impl_->dims;
  const size_t e = static_cast<size_t>(dims.e), c = static_cast<size_t>(dims.c);
  std::set<std::pair<std::string, int64_t>> inBatch;
  std::vector<int32_t> subjectIdx;
  for (const auto& r : batch) {
    const std::string q = str("results file ", path_, ": question (", r.subject, ", index ", r.index, "): ");
    auto it = impl_->subjectIndex.find(r.subject);
    MOE_CHECK(it != impl_->subjectIndex.end(), q, "subject is not in the file's subject table");
    subjectIdx.push_back(it->second);
    MOE_CHECK(r.index >= 0, q, "index must be >= 0");
    auto key = std::make_pair(r.subject, r.index);
    MOE_CHECK(!done_.count(key), q, "already written to the file; each question is written once");
    MOE_CHECK(inBatch.insert(key).second, q, "appears twice in one batch");
    MOE_CHECK(r.numChoices >= 1 && r.numChoices <= dims.c, q, "num_choices ", r.numChoices, " is outside [1, ",
              dims.c, "]");
    MOE_CHECK(r.gold >= 0 && r.gold < r.numChoices, q, "gold ", r.gold, " is outside [0, ", r.numChoices, ")");
    MOE_CHECK(r.shots >= 0, q, "shots must be >= 0, got ", r.shots);
    auto size = [&](const char* name, size_t got, size_t want) {
      MOE_CHECK(got == want, q, name, " has ", got, " values, expected ", want, " (E=", e, ", C=", c, ")");
    };
    size("prompt_tokens", r.promptTokens.size(), e);
    size("weights", r.weights.size(), e);
    size("expert_entropy", r.expertEntropy.size(), e);
    size("expert_letter_probs", r.expertLetterProbs.size(), e * c);
    size("mixture_letter_probs", r.mixtureLetterProbs.size(), c);
    size("expert_choice_probs", r.expertChoiceProbs.size(), e * c);
    size("mixture_choice_probs", r.mixtureChoiceProbs.size(), c);
    size("expert_prediction", r.expertPrediction.size(), e);
    size("expert_correct", r.expertCorrect.size(), e);
    size("expert_vocab_choice", r.expertVocabChoice.size(), e);
    size("expert_letter_mass", r.expertLetterMass.size(), e);
    if (!r.gateScores.empty()) size("gate_scores", r.gateScores.size(), e);
    auto choice = [&](const char* name, int32_t v) {
      MOE_CHECK(v >= -1 && v < r.numChoices, q, name, " ", v, " is outside [-1, ", r.numChoices, ")");
    };
    choice("prediction", r.prediction);
    choice("mixture_vocab_choice", r.mixtureVocabChoice);
    MOE_CHECK(r.correct == (r.prediction == r.gold), q, "correct is ", r.correct, " but prediction ", r.prediction,
              " and gold ", r.gold);
    for (size_t x = 0; x < e; ++x) {
      choice("expert_prediction", r.expertPrediction[x]);
      choice("expert_vocab_choice", r.expertVocabChoice[x]);
      MOE_CHECK(r.expertCorrect[x] == (r.expertPrediction[x] == r.gold ? 1 : 0), q, "expert ", x,
                ": expert_correct is ", int(r.expertCorrect[x]), " but expert_prediction ", r.expertPrediction[x],
                " and gold ", r.gold);
      MOE_CHECK(r.promptTokens[x] >= 0, q, "prompt_tokens must be >= 0");
    }
  }

  const hsize_t b = batch.size(), n0 = static_cast<hsize_t>(rows_);
  const auto& cols = columns();
  std::vector<unsigned char> buf;
  try {
    for (size_t i = 0; i < cols.size(); ++i) {
      const Column& col = cols[i];
      const size_t width = dims.width(col.shape), es = elemSize(col.elem);
      buf.assign(b * width * es, 0);
      if (col.elem == Elem::F32) {  // values a row leaves out (gate_scores without a router) are NaN
        float* v = reinterpret_cast<float*>(buf.data());
        std::fill(v, v + b * width, kNaNf);
      }
      for (size_t r = 0; r < b; ++r) {
        void* p = buf.data() + r * width * es;
        if (i == 0) {
          *static_cast<int32_t*>(p) = subjectIdx[r];
          continue;
        }
        col.put(batch[r], p);
        if (col.shape == Shape::NC || col.shape == Shape::NEC) {  // unused choice columns are NaN
          float* v = static_cast<float*>(p);
          for (size_t row = 0; row < width / c; ++row)
            for (size_t k = static_cast<size_t>(batch[r].numChoices); k < c; ++k) v[row * c + k] = kNaNf;
        }
      }
      hid_t d = impl_->datasets[i].get();
      std::vector<hsize_t> ext = {n0 + b}, start = {n0}, count = {b};
      for (hsize_t t : dims.trailing(col.shape)) {
        ext.push_back(t);
        start.push_back(0);
        count.push_back(t);
      }
      MOE_H5_CHECK(H5Dset_extent(d, ext.data()));
      Dataspace fs(MOE_H5_ID(H5Dget_space(d)));
      MOE_H5_CHECK(H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr));
      Dataspace ms(MOE_H5_ID(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr)));
      MOE_H5_CHECK(H5Dwrite(d, memType(col.elem), ms.get(), fs.get(), H5P_DEFAULT, buf.data()));
    }
    MOE_H5_CHECK(H5Fflush(impl_->file.get(), H5F_SCOPE_LOCAL));
  } catch (const Error& err) {
    MOE_THROW("cannot append ", b, " rows to results file ", path_, ": ", err.what());
  }
  rows_ += static_cast<int64_t>(b);
  for (const auto& r : batch) done_.emplace(r.subject, r.index);
}

void ResultsWriter::appendCosts(const std::vector<RankCost>& ranks, const std::vector<BatchTiming>& timing) {
  MOE_CHECK(impl_ && impl_->file, "results file ", path_, ": appendCosts after finish()");
  const hid_t f = impl_->file.get();
  try {
    std::vector<RankCost> allRanks = readRankCosts(f, path_);
    std::vector<BatchTiming> allTiming = readBatchTimings(f, path_, static_cast<hsize_t>(impl_->dims.e));
    allRanks.insert(allRanks.end(), ranks.begin(), ranks.end());
    allTiming.insert(allTiming.end(), timing.begin(), timing.end());
    writeRankCosts(f, allRanks);
    writeBatchTimings(f, allTiming, static_cast<size_t>(impl_->dims.e));
    MOE_H5_CHECK(H5Fflush(f, H5F_SCOPE_LOCAL));
  } catch (const Error& e) {
    MOE_THROW("cannot write the costs to results file ", path_, ": ", e.what());
  }
}

void ResultsWriter::finish() {
  MOE_CHECK(impl_ && impl_->file, "results file ", path_, ": finish() called twice");
  const hid_t f = impl_->file.get();
  try {
    ResultsFile all;
    all.path = path_;
    all.header = header_;
    all.rows = readRows(f, path_, header_);
    writeSummary(f, summarize(all));
    header_.endTime = isoTimeUtcNow();
    header_.status = "complete";
    writeAttr(f, "end_time", header_.endTime);
    writeAttr(f, "status", header_.status);
    MOE_H5_CHECK(H5Fflush(f, H5F_SCOPE_LOCAL));
    impl_->datasets.clear();
    impl_->file.close();
  } catch (const Error& e) {
    MOE_THROW("cannot finish results file ", path_, ": ", e.what());
  }
  impl_.reset();
}

ResultsFile readResults(const std::string& path) {
  File file = openExisting(path, H5F_ACC_RDONLY);
  ResultsFile out;
  out.path = path;
  out.header = readHeader(file.get(), path);
  out.rows = readRows(file.get(), path, out.header);
  out.ranks = readRankCosts(file.get(), path);
  out.timing = readBatchTimings(file.get(), path, out.header.experts.size());
  return out;
}

}  // namespace moe
