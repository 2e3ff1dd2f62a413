# Results file (HDF5), statistics and the report.
moe_add_test(test_stats SOURCES unit/test_stats.cpp LIBS moe_coordinator)
moe_add_test(test_results SOURCES unit/test_results.cpp unit/test_results_synthetic.cpp LIBS moe_coordinator)
moe_add_test(test_report SOURCES unit/test_report.cpp unit/test_results_synthetic.cpp
             LIBS moe_coordinator nlohmann_json::nlohmann_json)
moe_add_test(test_costs SOURCES unit/test_costs.cpp unit/test_results_synthetic.cpp
             LIBS moe_coordinator nlohmann_json::nlohmann_json)

# A helper that writes synthetic results files through ResultsWriter, for the tools below.
add_executable(moe_results_synth unit/test_results_synth_tool.cpp unit/test_results_synthetic.cpp)
target_link_libraries(moe_results_synth PRIVATE moe_coordinator)
target_compile_options(moe_results_synth PRIVATE ${MOE_WARNINGS})

set(MOE_RESULTS_DIR ${CMAKE_CURRENT_BINARY_DIR}/results_files)
file(MAKE_DIRECTORY ${MOE_RESULTS_DIR})
set(_mean ${MOE_RESULTS_DIR}/mean.h5)        # 3 experts, mean, letters scoring, complete
set(_partial ${MOE_RESULTS_DIR}/partial.h5)  # the same run stopped after 13 questions
set(_letters ${MOE_RESULTS_DIR}/letters.h5)  # 2 experts, weighted, answer-letter mixture, vocab scoring
add_test(NAME results_make_mean COMMAND moe_results_synth ${_mean} --experts 3 --mode mean --batch 5)
add_test(NAME results_make_partial COMMAND moe_results_synth ${_partial} --experts 3 --partial 13 --batch 4)
add_test(NAME results_make_letters COMMAND moe_results_synth ${_letters} --experts 2 --mode weighted
         --scoring vocab --space answer-letters --batch 8)
set_tests_properties(results_make_mean results_make_partial results_make_letters
                     PROPERTIES FIXTURES_SETUP results_files LABELS unit)
# moe-dist report, each format.
set(_moe $<TARGET_FILE:moe-dist>)
moe_add_cli_test(cli_report_text REGEX "^overall \\(micro\\) +32 +[0-9.]+ ± [0-9.]+ "
                COMMAND ${_moe} report ${_mean})
moe_add_cli_test(cli_report_markdown REGEX "^\\| \\*\\*overall \\(micro\\)\\*\\* \\| 32 \\| [0-9.]+ ± [0-9.]+ \\|"
                COMMAND ${_moe} report ${_mean} --format markdown)
moe_add_cli_test(cli_report_csv REGEX "^overall,micro,32,0\\.[0-9]+,0\\.[0-9]+,"
                COMMAND ${_moe} report ${_mean} --format csv)
moe_add_cli_test(cli_report_json REGEX "\"questions\": 32,"
                COMMAND ${_moe} report ${_mean} --format=json)
moe_add_cli_test(cli_report_partial REGEX "PARTIAL \\(status 'running'\\): 13 questions in 2 subjects"
                COMMAND ${_moe} report ${_partial})
moe_add_cli_test(cli_report_answer_letters REGEX "answer-letters: the experts' vocabularies differ"
                COMMAND ${_moe} report ${_letters})
moe_add_cli_test(cli_report_rescore REGEX "letters \\(argmax over the answer letters\\), re-scored: the run itself used vocab"
                COMMAND ${_moe} report ${_letters} --scoring letters)
moe_add_cli_test(cli_report_not_hdf5 EXPECT_FAIL REGEX "expect\\.sh is not an HDF5 file"
                COMMAND ${_moe} report ${PROJECT_SOURCE_DIR}/tests/expect.sh)
moe_add_cli_test(cli_report_missing EXPECT_FAIL REGEX "results file /nonexistent/run\\.h5 does not exist"
                COMMAND ${_moe} report /nonexistent/run.h5)
moe_add_cli_test(cli_report_no_file EXPECT_FAIL REGEX "report: expected one results FILE"
                COMMAND ${_moe} report)

# h5dump reads the file as any HDF5 tool would.
find_program(MOE_H5DUMP h5dump)
if(MOE_H5DUMP)
  # Row index within each subject's CSV, rows in write order: 9 + 7 + 6 + 5 + 5 questions.
  moe_add_cli_test(h5dump_results_index
    REGEX "\\(0\\): 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4$"
    COMMAND ${MOE_H5DUMP} -w 0 -d /index ${_mean})
  moe_add_cli_test(h5dump_results_shape REGEX "DATASPACE  SIMPLE \\{ \\( 32, 3, 4 \\) / \\( H5S_UNLIMITED, 3, 4 \\) \\}"
    COMMAND ${MOE_H5DUMP} -H -d /expert_letter_probs ${_mean})
  # The last 5 questions have 3 choices: column 3 of mixture_letter_probs is NaN.
  moe_add_cli_test(h5dump_results_nan_padding REGEX "^ *\\(31,0\\): 0\\.[0-9]+, 0\\.[0-9]+, 0\\.[0-9]+, nan$"
    COMMAND ${MOE_H5DUMP} -w 0 -d /mixture_letter_probs -s 27,0 -c 5,4 ${_mean})
  moe_add_cli_test(h5dump_results_status REGEX "\\(0\\): \"complete\""
    COMMAND ${MOE_H5DUMP} -a /status ${_mean})
else()
  message(STATUS "h5dump not found: the h5dump results tests are not registered (install hdf5-tools)")
endif()
set(_results_cli_tests cli_report_text cli_report_markdown cli_report_csv cli_report_json cli_report_partial
    cli_report_answer_letters cli_report_rescore cli_report_not_hdf5 cli_report_missing cli_report_no_file)
if(MOE_H5DUMP)
  list(APPEND _results_cli_tests h5dump_results_index h5dump_results_shape h5dump_results_nan_padding
       h5dump_results_status)
endif()
set_tests_properties(${_results_cli_tests} PROPERTIES FIXTURES_REQUIRED results_files)

# h5py, as researchers read the file. Debian's python3-h5py is for /usr/bin/python3.
set(_py /usr/bin/python3)
set(_h5py_ok FALSE)
if(EXISTS ${_py})
  execute_process(COMMAND ${_py} -c "import h5py, numpy" RESULT_VARIABLE _h5py_rc OUTPUT_QUIET ERROR_QUIET)
  if(_h5py_rc EQUAL 0)
    set(_h5py_ok TRUE)
  endif()
endif()
if(_h5py_ok)
  add_test(NAME results_h5py_mean COMMAND ${_py} ${PROJECT_SOURCE_DIR}/tests/check_results_h5py.py ${_mean} --mean-mode)
  add_test(NAME results_h5py_letters COMMAND ${_py} ${PROJECT_SOURCE_DIR}/tests/check_results_h5py.py ${_letters})
else()
  message(STATUS "/usr/bin/python3 with h5py and numpy not found: the results_h5py tests will be skipped "
                 "(apt-get install python3-h5py)")
  foreach(_t results_h5py_mean results_h5py_letters)
    add_test(NAME ${_t} COMMAND sh -c "echo 'skipped: /usr/bin/python3 with h5py not found at configure time'; exit 77")
  endforeach()
endif()
set_tests_properties(results_h5py_mean results_h5py_letters PROPERTIES FIXTURES_REQUIRED results_files
                     SKIP_RETURN_CODE 77 LABELS unit)
