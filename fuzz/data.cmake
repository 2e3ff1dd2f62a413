# CSV reader and the MMLU row checks on its records.
moe_add_fuzzer(fuzz_csv SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_csv.cpp ${SRC}/coordinator/csv.cpp
  ${SRC}/coordinator/mmlu.cpp ${SRC}/coordinator/categories.cpp)
