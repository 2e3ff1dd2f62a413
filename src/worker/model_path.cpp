#include "worker/model_path.h"

#include <sys/stat.h>

#include "common/error.h"

namespace moe {
namespace {
bool isDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool isFile(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
std::string baseName(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}
}  // namespace

ModelPath resolveModelPath(const std::string& path) {
  MOE_CHECK(!path.empty(), "model path is empty");
  if (isDir(path)) {
    MOE_CHECK(isFile(path + "/config.json"), "model folder '", path,
              "' has no config.json (expected a Hugging Face model folder or a .gguf file)");
    const bool single = isFile(path + "/model.safetensors");
    const bool sharded = isFile(path + "/model.safetensors.index.json");
    MOE_CHECK(single || sharded, "model folder '", path,
              "' has neither model.safetensors nor model.safetensors.index.json");
    MOE_CHECK(isFile(path + "/tokenizer.json"), "model folder '", path, "' has no tokenizer.json");
    return ModelPath{ModelFormat::HuggingFaceFolder, path, baseName(path)};
  }
  if (isFile(path)) {
    std::string name = baseName(path);
    MOE_CHECK(name.size() > 5 && name.substr(name.size() - 5) == ".gguf", "model '", path,
              "' is a file but not a .gguf file (expected a Hugging Face model folder or a .gguf file)");
    return ModelPath{ModelFormat::Gguf, path, name.substr(0, name.size() - 5)};
  }
  MOE_THROW("model '", path, "': no such file or folder");
}

}  // namespace moe
