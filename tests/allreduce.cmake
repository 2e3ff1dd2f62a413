# bench_allreduce as a test (label mpi): a small sweep under mpiexec on 2 and 3 ranks through
# MpiCommunicator. The benchmark validates every size before timing it (exact sums of known
# values) and exits 1 on any wrong value; the regex also needs its closing "wrong values: 0 OK".
if(MOE_BUILD_BENCHMARKS)  # the target is defined later (benchmarks/), resolved at generation
  foreach(_ranks 2 3)
    moe_add_cli_test(bench_allreduce_mpi_${_ranks}ranks REGEX "# wrong values: 0 OK"
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${_ranks} --oversubscribe ${MPIEXEC_PREFLAGS}
              $<TARGET_FILE:bench_allreduce> --backend mpi --min-bytes 4 --max-bytes 4M --factor 4
              --iters 3 --warmup 1 ${MPIEXEC_POSTFLAGS}
      LABELS mpi)
  endforeach()
  # Sizes that are not powers of two (odd counts: 3, 21, 147, ... floats).
  moe_add_cli_test(bench_allreduce_mpi_odd_sizes REGEX "^ +12 +3 +float +sum "
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe ${MPIEXEC_PREFLAGS}
            $<TARGET_FILE:bench_allreduce> --min-bytes 12 --max-bytes 100K --factor 7 --iters 2 --warmup 0
            ${MPIEXEC_POSTFLAGS}
    LABELS mpi)
  moe_add_cli_test(bench_allreduce_bad_backend EXPECT_FAIL REGEX "unknown backend 'gloo' \\(expected mpi or nccl\\)"
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe ${MPIEXEC_PREFLAGS}
            $<TARGET_FILE:bench_allreduce> --backend gloo ${MPIEXEC_POSTFLAGS}
    LABELS mpi)
endif()
