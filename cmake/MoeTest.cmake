# moe_add_test(NAME SOURCES a.cpp ... [LIBS ...] [LABELS unit|mpi|slurm|gpu|slow ...] [RANKS n] [ARGS ...])
# One helper registers every GoogleTest binary: RANKS > 0 launches it under mpiexec with that
# many ranks (label mpi), otherwise it runs as a plain process.
function(moe_add_test name)
  cmake_parse_arguments(T "" "RANKS;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest Threads::Threads)
  if(NOT T_RANKS)
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
  endif()
  target_compile_options(${name} PRIVATE ${MOE_WARNINGS})
  target_compile_definitions(${name} PRIVATE
    MOE_SOURCE_DIR="${PROJECT_SOURCE_DIR}" MOE_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(T_RANKS)
    add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_RANKS}
             --oversubscribe ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${name}> ${T_ARGS} ${MPIEXEC_POSTFLAGS})
    list(APPEND T_LABELS mpi)
  else()
    add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  list(REMOVE_DUPLICATES T_LABELS)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
endfunction()

# moe_add_cli_test(NAME [EXPECT_FAIL] [REGEX re] COMMAND ... [LABELS ...])
# Runs a command (usually the moe-dist binary) through tests/expect.sh, which checks both the exit
# status (zero, or with EXPECT_FAIL non-zero without a crash signal) and that the combined output
# matches the extended regular expression REGEX.
function(moe_add_cli_test name)
  cmake_parse_arguments(T "EXPECT_FAIL" "REGEX" "COMMAND;LABELS" ${ARGN})
  if(T_EXPECT_FAIL)
    set(_want fail)
  else()
    set(_want ok)
  endif()
  add_test(NAME ${name} COMMAND bash ${PROJECT_SOURCE_DIR}/tests/expect.sh ${_want} "${T_REGEX}" ${T_COMMAND})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT 300
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
endfunction()
