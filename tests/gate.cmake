# Gated mixtures: gate configuration, policies, the job with gates, combine, calibrate, the
# routing report, the plot script and the example configs (configs/gate-*.yaml).
moe_add_test(test_gate_config SOURCES unit/test_gate_config.cpp LIBS moe_common)
moe_add_test(test_gate_policies SOURCES unit/test_gate_policies.cpp LIBS moe_worker)
moe_add_test(test_gate_offline SOURCES unit/test_gate_offline.cpp unit/test_results_synthetic.cpp LIBS moe_coordinator)

# The job with gates under mpirun, checked through h5py against single-expert runs (see the script).
find_program(MOE_GATE_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
foreach(what policies combine calibrate)
  add_test(NAME e2e_gate_${what} COMMAND ${MOE_GATE_PYTHON} ${PROJECT_SOURCE_DIR}/tests/e2e/test_gate.py ${what}
           --bin $<TARGET_FILE:moe-dist>)
  set_tests_properties(e2e_gate_${what} PROPERTIES LABELS "mpi" TIMEOUT 1500 RUN_SERIAL TRUE)
endforeach()

# Each example config runs on the bundled checkpoints (2 questions per subject) and reports its routing.
set(_gate_out ${CMAKE_CURRENT_BINARY_DIR}/gate_configs)
file(MAKE_DIRECTORY ${_gate_out})
set(_gate_run ${MPIEXEC_EXECUTABLE} --oversubscribe -np 3 $<TARGET_FILE:moe-dist>)
set(_gate_tests)
foreach(policy uniform static table entropy router retrieval)
  moe_add_cli_test(config_gate_${policy} LABELS mpi REGEX "routing \\(gate ${policy}"
    COMMAND ${_gate_run} --config configs/gate-${policy}.yaml --limit 2 --output ${_gate_out}/gate-${policy}.h5
            --overwrite)
  list(APPEND _gate_tests config_gate_${policy})
endforeach()
# calibrated: the labelled run (val split) first, then the config with that file.
moe_add_cli_test(config_gate_val LABELS mpi REGEX "wrote .*val\\.h5"
  COMMAND ${_gate_run} --config configs/demo.yaml --split val --limit 2 --output ${_gate_out}/val.h5 --overwrite)
moe_add_cli_test(config_gate_calibrated LABELS mpi REGEX "routing \\(gate calibrated"
  COMMAND ${_gate_run} --config configs/gate-calibrated.yaml --gate-calibration ${_gate_out}/val.h5 --limit 2
          --output ${_gate_out}/gate-calibrated.h5 --overwrite)
set_tests_properties(config_gate_val PROPERTIES FIXTURES_SETUP gate_val)
set_tests_properties(config_gate_calibrated PROPERTIES FIXTURES_REQUIRED gate_val)
set_tests_properties(config_gate_router PROPERTIES FIXTURES_SETUP gate_router_file)
list(APPEND _gate_tests config_gate_val config_gate_calibrated)
set_tests_properties(${_gate_tests} PROPERTIES WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} RUN_SERIAL TRUE TIMEOUT 600)

# The calibrate command on the val run, and the plots of the router run.
moe_add_cli_test(cli_calibrate REGEX "^    \"STEM\": \\[0\\.[0-9]+, 0\\.[0-9]+, 0\\.[0-9]+\\]$"
  COMMAND $<TARGET_FILE:moe-dist> calibrate ${_gate_out}/val.h5 --output ${_gate_out}/table.yaml --by category
          --gate-temperature 0.5)
set_tests_properties(cli_calibrate PROPERTIES FIXTURES_REQUIRED gate_val)
moe_add_cli_test(cli_calibrate_no_output EXPECT_FAIL REGEX "calibrate: pass --output TABLE.yaml"
  COMMAND $<TARGET_FILE:moe-dist> calibrate ${_gate_out}/val.h5)
moe_add_cli_test(cli_combine_no_file EXPECT_FAIL REGEX "combine: expected one results FILE"
  COMMAND $<TARGET_FILE:moe-dist> combine --output x.h5)
execute_process(COMMAND /usr/bin/python3 -c "import h5py, matplotlib" RESULT_VARIABLE _gate_plot_rc
                OUTPUT_QUIET ERROR_QUIET)
if(_gate_plot_rc EQUAL 0)
  moe_add_cli_test(plot_results_router REGEX "gate-router_routing\\.png$"
    COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/plot_results.py ${_gate_out}/gate-router.h5
            --out ${_gate_out}/plots)
else()
  add_test(NAME plot_results_router
           COMMAND sh -c "echo 'skipped: /usr/bin/python3 with h5py and matplotlib not found (python3-matplotlib)'; exit 77")
  set_tests_properties(plot_results_router PROPERTIES SKIP_RETURN_CODE 77)
endif()
set_tests_properties(plot_results_router PROPERTIES FIXTURES_REQUIRED gate_router_file)
