#include "worker/torch/torch_runtime.h"

#include <torch/torch.h>
#include <torch/version.h>

#include "common/error.h"

namespace moe {

bool torchHasCuda() { return torch::cuda::is_available(); }

int cudaDeviceCount() { return static_cast<int>(torch::cuda::device_count()); }

std::string torchRuntimeInfo() {
  return str("libtorch ", TORCH_VERSION, ", CUDA: ", torchHasCuda() ? str("yes (", cudaDeviceCount(), " devices)") : "no",
             ", threads: ", at::get_num_threads());
}

void setTorchThreads(int n) {
  if (n > 0) at::set_num_threads(n);
}

}  // namespace moe
