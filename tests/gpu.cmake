# Tests of the GPU path (kernels' CUDA versions and the CPU references added with them, the NCCL
# communicator). Label gpu: compiled wherever CUDA (and NCCL) is found, run everywhere; without a
# device the device cases GTEST_SKIP with the reason and the host-side checks still run.
moe_add_test(test_gate SOURCES unit/test_gate.cpp LIBS moe_kernels)
moe_add_test(test_kernels_cpu SOURCES unit/test_kernels_cpu.cpp LIBS moe_kernels)
moe_add_test(test_kernels_gpu SOURCES unit/test_kernels_gpu.cpp LIBS moe_kernels moe_comm LABELS gpu)
if(MOE_NCCL)
  # Two ranks: the closed-form collectives need a device each; the bootstrap's failure path (every
  # rank throws, none hangs) runs where there is no device.
  moe_add_test(test_nccl_communicator SOURCES unit/test_nccl_communicator.cpp LIBS moe_comm moe_kernels
               LABELS gpu RANKS 2)
endif()
