// OMP_WAIT_POLICY=PASSIVE for every program that links the engine, in effect before libgomp reads it.
//
// Debian's libtorch runs its element-wise kernels on OpenMP threads and its matrix products on
// OpenBLAS's own pthreads. Under libgomp's default policy idle OpenMP workers spin and take the
// cores OpenBLAS computes on, so configureThreads (worker/torch/expert.cpp) then keeps libtorch
// at one thread. With a passive policy both pools can have the threads: measured on the 2-core
// VM, SmolLM-135M shape, 2 threads, 4 x 5-shot prompts, 317-369 tok/s against 266-286 with
// libtorch on one thread (three alternating runs each), and 184 with both spinning.
//
// libgomp reads the variable once, in its constructor, before main() and before any constructor
// of ours; and setenv() in a .preinit_array function is undone when libc's own initialisation
// sets environ afterwards. So when the variable is unset, the preinit function (which runs after
// relocation but before every library constructor, libtorch's long static initialisation
// included) re-executes the program with the variable added: the cost is the dynamic loader's
// relocation once more, about 50 ms. A value the user set is kept as is (no re-execution); if
// /proc/self/exe cannot be executed, the program goes on with the default policy and libtorch
// keeps one thread.
//
// This file is an INTERFACE source of moe_engine, so it is compiled into each executable that
// links the engine (an object of a static library that nothing references is not linked). It
// calls nothing that needs libc initialised: string compares and execve.
#include <unistd.h>

#include <cstring>

namespace {

constexpr char kSetting[] = "OMP_WAIT_POLICY=PASSIVE";
constexpr int kMaxEnv = 8192;
char* gEnv[kMaxEnv + 2];

void preferPassiveOpenMp(int, char** argv, char** envp) {
  if (argv == nullptr || envp == nullptr) return;
  int n = 0;
  for (; envp[n] != nullptr; ++n) {
    if (std::strncmp(envp[n], "OMP_WAIT_POLICY=", 16) == 0) return;  // the user's choice
    if (n >= kMaxEnv) return;
  }
  for (int i = 0; i < n; ++i) gEnv[i] = envp[i];
  gEnv[n] = const_cast<char*>(kSetting);
  gEnv[n + 1] = nullptr;
  execve("/proc/self/exe", argv, gEnv);  // returns only on failure: keep going as we are
}

__attribute__((section(".preinit_array"), used)) void (*const kPreferPassiveOpenMp)(int, char**, char**) =
    preferPassiveOpenMp;

}  // namespace
