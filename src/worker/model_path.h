// Resolving a --models entry to what is on disk: a Hugging Face model folder (config.json plus
// safetensors weights and tokenizer.json) or a single GGUF file.
#pragma once

#include <string>

namespace moe {

enum class ModelFormat { HuggingFaceFolder, Gguf };

struct ModelPath {
  ModelFormat format;
  std::string path;  // the folder or the .gguf file
  std::string name;  // short display name (folder or file name without .gguf)
};

// Throws moe::Error naming the path and what is missing.
ModelPath resolveModelPath(const std::string& path);

}  // namespace moe
