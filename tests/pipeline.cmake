# Tests of the distributed pipeline pieces: scheduling, mixtures, the job end to end.
moe_add_test(test_scheduler SOURCES unit/test_scheduler.cpp LIBS moe_coordinator)

# The job end to end under mpirun (tiny fixture models, data/sample), checked through h5py.
find_program(MOE_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
foreach(what equivalence resume costs)
  add_test(NAME e2e_${what} COMMAND ${MOE_SYSTEM_PYTHON} ${PROJECT_SOURCE_DIR}/tests/e2e/test_pipeline.py ${what}
           --bin $<TARGET_FILE:moe-dist>)
  set_tests_properties(e2e_${what} PROPERTIES LABELS "mpi" TIMEOUT 900 RUN_SERIAL TRUE)
endforeach()

set(_mpirun ${MPIEXEC_EXECUTABLE} --oversubscribe)
moe_add_cli_test(cli_run_ranks_not_multiple EXPECT_FAIL LABELS mpi REGEX "4 ranks, which is not a multiple of the 3 experts"
  COMMAND ${_mpirun} -np 4 $<TARGET_FILE:moe-dist> --models a b c --data ${PROJECT_SOURCE_DIR}/data/sample --output /tmp/x.h5)
moe_add_cli_test(cli_run_missing_model EXPECT_FAIL LABELS mpi REGEX "model '/nonexistent/model': no such file or folder"
  COMMAND ${_mpirun} -np 2 $<TARGET_FILE:moe-dist> --models ${PROJECT_SOURCE_DIR}/tests/fixtures/models/llama /nonexistent/model
          --data ${PROJECT_SOURCE_DIR}/data/sample --output ${PROJECT_BINARY_DIR}/cli_missing_model.h5 --overwrite)
moe_add_cli_test(cli_run_bad_data EXPECT_FAIL LABELS mpi REGEX "/nonexistent/data"
  COMMAND ${_mpirun} -np 1 $<TARGET_FILE:moe-dist> --models ${PROJECT_SOURCE_DIR}/tests/fixtures/models/llama
          --data /nonexistent/data --output ${PROJECT_BINARY_DIR}/cli_bad_data.h5)
moe_add_cli_test(cli_run_weighted_needs_weights EXPECT_FAIL LABELS mpi REGEX "--mode weighted needs --weights"
  COMMAND ${_mpirun} -np 1 $<TARGET_FILE:moe-dist> --models ${PROJECT_SOURCE_DIR}/tests/fixtures/models/llama --mode weighted
          --data ${PROJECT_SOURCE_DIR}/data/sample --output ${PROJECT_BINARY_DIR}/cli_weighted.h5)
