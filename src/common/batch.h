// A batch of questions, as the coordinator hands it to a replica group: one subject, its prompt
// pieces (so each expert can drop shots to fit its own context), and the questions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct BatchQuestion {
  int64_t id = 0;      // position in the coordinator's question list
  int32_t gold = 0;    // index of the right choice
  std::string text;    // the question part of the prompt: question, choices, "Answer:"
  int32_t skipShot = -1;  // a shot not to use for this question (itself, on the dev split)
};

struct Batch {
  int64_t id = -1;                  // -1: no more work
  int32_t subject = 0;              // index into the run's subject table
  int32_t choices = 4;              // answer choices of every question of this batch
  std::string header;               // "The following are multiple choice questions ..."
  std::vector<std::string> shots;   // formatted dev examples, each ending in " X\n\n"
  std::vector<BatchQuestion> questions;

  bool isStop() const { return id < 0; }
  // The prompt of question q with its first k shots (skipping its skipShot).
  std::string prompt(size_t q, size_t k) const;
  size_t availableShots(size_t q) const;
};

std::vector<uint8_t> serializeBatch(const Batch& b);
Batch deserializeBatch(const uint8_t* data, size_t size);

}  // namespace moe
