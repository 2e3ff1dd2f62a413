# Tests of scripts/get-mmlu.sh, offline: --from the real MMLU (skipped when ../shared/mmlu/data or
# $MOE_MMLU_DIR is absent), --from an incomplete folder, a download from an unreachable address, a
# download with the wrong sha256, and a full download/unpack/check of a synthetic archive served by
# file:// (MOE_MMLU_URL, with MOE_MMLU_SHA256 set to that archive's hash).
set(_get_mmlu ${PROJECT_SOURCE_DIR}/scripts/get-mmlu.sh)
set(_get_mmlu_tmp ${CMAKE_CURRENT_BINARY_DIR}/get_mmlu)
if(DEFINED ENV{MOE_MMLU_DIR})
  set(_real_mmlu $ENV{MOE_MMLU_DIR})
else()
  set(_real_mmlu ${PROJECT_SOURCE_DIR}/../shared/mmlu/data)
endif()
set(_mmlu_subjects abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology
  college_chemistry college_computer_science college_mathematics college_medicine college_physics
  computer_security conceptual_physics econometrics electrical_engineering elementary_mathematics
  formal_logic global_facts high_school_biology high_school_chemistry high_school_computer_science
  high_school_european_history high_school_geography high_school_government_and_politics
  high_school_macroeconomics high_school_mathematics high_school_microeconomics high_school_physics
  high_school_psychology high_school_statistics high_school_us_history high_school_world_history
  human_aging human_sexuality international_law jurisprudence logical_fallacies machine_learning
  management marketing medical_genetics miscellaneous moral_disputes moral_scenarios nutrition
  philosophy prehistory professional_accounting professional_law professional_medicine
  professional_psychology public_relations security_studies sociology us_foreign_policy virology
  world_religions)
list(JOIN _mmlu_subjects " " _mmlu_subjects_str)
# make_layout DIR SPLIT...: one-row CSVs for the 57 subjects in each split.
# get_mmlu_test(NAME ok|fail REGEX SCRIPT): runs the bash SCRIPT through tests/expect.sh (exit status
# and output regex, as moe_add_cli_test), the script kept as one argument (it holds semicolons).
function(get_mmlu_test name want regex script)
  add_test(NAME ${name} COMMAND bash ${PROJECT_SOURCE_DIR}/tests/expect.sh ${want} "${regex}" bash -c "${script}")
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
endfunction()
set(_make_layout "make_layout() { d=$1; shift; for sp in \"$@\"; do mkdir -p $d/$sp; for s in ${_mmlu_subjects_str}; do echo 'Q?,a,b,c,d,A' > $d/$sp/$s\"_\"$sp.csv; done; done; }")


# Skipped (exit 77, outside expect.sh) when the real MMLU is absent.
add_test(NAME get_mmlu_from_real COMMAND bash -c
  "[ -d '${_real_mmlu}/test' ] || { echo 'no MMLU at ${_real_mmlu}: skipped'; exit 77; }; \
   exec bash ${PROJECT_SOURCE_DIR}/tests/expect.sh ok 'already there: .*/from_real/data' bash -c \"$1\""
  get_mmlu_from_real
  "t=${_get_mmlu_tmp}/from_real; rm -rf $t; \
   '${_get_mmlu}' --from '${_real_mmlu}' --dest $t/data && [ -L $t/data ] && \
   [ \"$(readlink $t/data)\" = \"$(cd '${_real_mmlu}' && pwd -P)\" ] && \
   '${_get_mmlu}' --from '${_real_mmlu}' --dest $t/data")
set_tests_properties(get_mmlu_from_real PROPERTIES LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77)

get_mmlu_test(get_mmlu_from_incomplete fail
  "does not have the official MMLU layout.*split 'val': folder .*/val/ is missing.*split 'test': 2 of 57 subjects missing: anatomy virology "
  "${_make_layout}; t=${_get_mmlu_tmp}/incomplete; rm -rf $t; make_layout $t/src dev test; \
   rm $t/src/test/anatomy_test.csv $t/src/test/virology_test.csv; \
   '${_get_mmlu}' --from $t/src --dest $t/data 2>&1 | tr '\\n' ' '; rc=\${PIPESTATUS[0]}; \
   [ ! -e $t/data ] || { echo 'linked an incomplete folder'; exit 99; }; exit $rc")

get_mmlu_test(get_mmlu_from_empty_csv fail "split 'dev': empty CSV for 1 subjects: marketing$"
  "${_make_layout}; t=${_get_mmlu_tmp}/empty_csv; rm -rf $t; make_layout $t/src dev val test; \
   : > $t/src/dev/marketing_dev.csv; '${_get_mmlu}' --from $t/src --dest $t/data")

get_mmlu_test(get_mmlu_download_unreachable fail "error: MMLU could not be downloaded \\(no internet"
  "t=${_get_mmlu_tmp}/unreachable; rm -rf $t; \
   MOE_MMLU_URL=http://127.0.0.1:9/data.tar '${_get_mmlu}' --dest $t/data; rc=$?; \
   [ ! -e $t/data ] || { echo 'left a destination behind'; exit 99; }; exit $rc")

get_mmlu_test(get_mmlu_download_bad_sha256 fail
  "error: sha256 mismatch for file://.*expected bec563ba4bac1d6aaf04141cd7d1605d7a5ca833e38f994051e818489592989b"
  "t=${_get_mmlu_tmp}/bad_sha; rm -rf $t; mkdir -p $t; echo 'not MMLU' > $t/data.tar; \
   MOE_MMLU_URL=file://$t/data.tar '${_get_mmlu}' --dest $t/out/data; rc=$?; \
   [ ! -e $t/out/data ] || { echo 'installed a file with the wrong hash'; exit 99; }; exit $rc")

get_mmlu_test(get_mmlu_download_synthetic ok "sha256 ok.*MMLU ready at .*already there"
  "${_make_layout}; t=${_get_mmlu_tmp}/synthetic; rm -rf $t; make_layout $t/src/data dev val test; \
   tar -cf $t/data.tar -C $t/src data; \
   export MOE_MMLU_URL=file://$t/data.tar MOE_MMLU_SHA256=$(sha256sum $t/data.tar | cut -d' ' -f1); \
   { '${_get_mmlu}' --dest $t/cache/data && [ -s $t/cache/data/val/virology_val.csv ] && \
     [ ! -L $t/cache/data ] && '${_get_mmlu}' --dest $t/cache/data; } 2>&1 | tr '\\n' ' '; \
   exit \${PIPESTATUS[0]}")
