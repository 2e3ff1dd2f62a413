#include "common/batch.h"

#include "common/wire.h"

namespace moe {

std::string Batch::prompt(size_t q, size_t k) const {
  MOE_CHECK(q < questions.size(), "batch ", id, ": question ", q, " out of range");
  const int32_t skip = questions[q].skipShot;
  MOE_CHECK(k <= availableShots(q), "batch ", id, ": ", k, " shots requested, ", availableShots(q), " available");
  std::string s = header;
  for (size_t i = 0, used = 0; used < k; ++i) {
    if (static_cast<int32_t>(i) == skip) continue;
    s += shots[i];
    ++used;
  }
  s += questions[q].text;
  return s;
}

size_t Batch::availableShots(size_t q) const {
  const int32_t skip = questions.at(q).skipShot;
  return shots.size() - (skip >= 0 && static_cast<size_t>(skip) < shots.size() ? 1 : 0);
}

std::vector<uint8_t> serializeBatch(const Batch& b) {
  WireWriter w;
  w.put<uint32_t>(0x4D4F4542);  // "MOEB"
  w.put<int64_t>(b.id);
  w.put<int32_t>(b.subject);
  w.put<int32_t>(b.choices);
  w.putString(b.header);
  w.putStrings(b.shots);
  w.put<uint64_t>(b.questions.size());
  for (const auto& q : b.questions) {
    w.put<int64_t>(q.id);
    w.put<int32_t>(q.gold);
    w.putString(q.text);
    w.put<int32_t>(q.skipShot);
  }
  return std::move(w.bytes());
}

Batch deserializeBatch(const uint8_t* data, size_t size) {
  WireReader r(data, size, "batch");
  MOE_CHECK(r.get<uint32_t>() == 0x4D4F4542, "malformed batch message: bad magic");
  Batch b;
  b.id = r.get<int64_t>();
  b.subject = r.get<int32_t>();
  b.choices = r.get<int32_t>();
  b.header = r.getString();
  b.shots = r.getStrings();
  const uint64_t n = r.get<uint64_t>();
  MOE_CHECK(n <= size, "malformed batch message: ", n, " questions");
  b.questions.resize(n);
  for (auto& q : b.questions) {
    q.id = r.get<int64_t>();
    q.gold = r.get<int32_t>();
    q.text = r.getString();
    q.skipShot = r.get<int32_t>();
  }
  MOE_CHECK(r.atEnd(), "malformed batch message: trailing bytes");
  return b;
}

}  // namespace moe
