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
