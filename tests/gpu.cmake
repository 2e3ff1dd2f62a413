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
if(MOE_CUDA)
  # The device mixture (src/worker/mixture_device.h) against computeMixture: on 2 ranks (labels gpu,
  # mpi) and on 1 rank. Without a device the device cases GTEST_SKIP with the reason; the argument
  # checks run everywhere.
  moe_add_test(test_mixture_device SOURCES unit/test_mixture_device.cpp LIBS moe_worker moe_comm moe_kernels
               LABELS gpu RANKS 2 TIMEOUT 900)
  add_test(NAME test_mixture_device_1rank COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 1 --oversubscribe
           ${MPIEXEC_PREFLAGS} $<TARGET_FILE:test_mixture_device> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(test_mixture_device_1rank PROPERTIES LABELS "gpu;mpi" TIMEOUT 900
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
endif()
