# The Slurm job scripts (slurm/) against a real local Slurm: munged, slurmctld and two emulated
# slurmd nodes on this machine (scripts/slurm-local.sh), GPUs declared by count. Label `slurm`.
# A ctest fixture starts the cluster before the first of these tests (installing Slurm and munge
# through scripts/install-deps.sh --with-slurm when missing) and stops it after the last, whatever
# the outcome. Needs root; without it the cases are skipped (exit 77).
find_program(MOE_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
set(_slurm_work ${PROJECT_BINARY_DIR}/slurm-tests)
set(_slurm_env "MOE_SLURM_DIR=/tmp/moe-slurm-ctest;MOE_SLURM_PORT=16917;MOE_SLURM_NODES=2")

add_test(NAME slurm_cluster_start COMMAND bash ${PROJECT_SOURCE_DIR}/tests/slurm/cluster.sh start)
add_test(NAME slurm_cluster_stop COMMAND bash ${PROJECT_SOURCE_DIR}/tests/slurm/cluster.sh stop)
set_tests_properties(slurm_cluster_start PROPERTIES FIXTURES_SETUP moe_slurm LABELS slurm TIMEOUT 1200
  RESOURCE_LOCK moe_slurm ENVIRONMENT "${_slurm_env}")
set_tests_properties(slurm_cluster_stop PROPERTIES FIXTURES_CLEANUP moe_slurm LABELS slurm TIMEOUT 240
  RESOURCE_LOCK moe_slurm ENVIRONMENT "${_slurm_env}")

# Each case submits jobs and polls them with deadlines (tests/slurm/test_slurm.py); the jobs use
# every core, so the cases run alone.
foreach(case a100-srun a100-mpirun requeue multinode-1x6 multinode-1x6-mpirun multinode-2x3 layout-error bench)
  add_test(NAME slurm_${case} COMMAND ${MOE_SYSTEM_PYTHON} ${PROJECT_SOURCE_DIR}/tests/slurm/test_slurm.py ${case}
           --bin $<TARGET_FILE:moe-dist> --work ${_slurm_work})
  set_tests_properties(slurm_${case} PROPERTIES FIXTURES_REQUIRED moe_slurm LABELS slurm TIMEOUT 900
    RUN_SERIAL TRUE SKIP_RETURN_CODE 77 RESOURCE_LOCK moe_slurm ENVIRONMENT "${_slurm_env}")
endforeach()

# The job runner block is written twice (each job script stands alone, as sbatch copies it to a
# spool folder); the two copies must not drift apart.
add_test(NAME slurm_runner_blocks_identical COMMAND bash -c
  "diff <(sed -n '/^# ==== job runner/,$p' '${PROJECT_SOURCE_DIR}/slurm/mixture_a100.sh') \
        <(sed -n '/^# ==== job runner/,$p' '${PROJECT_SOURCE_DIR}/slurm/mixture_multinode.sh') && \
   grep -q '^# ==== end of job runner' '${PROJECT_SOURCE_DIR}/slurm/mixture_a100.sh'")
set_tests_properties(slurm_runner_blocks_identical PROPERTIES LABELS "unit;slurm" TIMEOUT 30)

find_program(MOE_SHELLCHECK shellcheck)
if(MOE_SHELLCHECK)
  add_test(NAME slurm_scripts_shellcheck COMMAND ${MOE_SHELLCHECK} -s bash
    ${PROJECT_SOURCE_DIR}/slurm/mixture_a100.sh ${PROJECT_SOURCE_DIR}/slurm/mixture_multinode.sh
    ${PROJECT_SOURCE_DIR}/slurm/bench_scaling.sh ${PROJECT_SOURCE_DIR}/scripts/slurm-local.sh
    ${PROJECT_SOURCE_DIR}/tests/slurm/cluster.sh ${PROJECT_SOURCE_DIR}/scripts/check-libtorch.sh)
  set_tests_properties(slurm_scripts_shellcheck PROPERTIES LABELS "unit;slurm" TIMEOUT 60)
endif()
