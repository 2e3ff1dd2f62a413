// What the process's libtorch is and how it runs: version, CUDA availability, threads.
// This header is torch-free so that any module may include it.
#pragma once

#include <string>

namespace moe {

// "libtorch 1.13.1, CUDA: no, threads: 2"
std::string torchRuntimeInfo();
bool torchHasCuda();
int cudaDeviceCount();
// Sets libtorch's intra-op threads (n > 0) and uses one inter-op thread.
void setTorchThreads(int n);

}  // namespace moe
