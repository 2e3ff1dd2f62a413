# cmake -DTORCH_LIBRARY=... -DTORCH_INSTALL_PREFIX=... -DTORCH_CXX_FLAGS=... -P torch_checks.cmake
# Runs moe_check_torch (cmake/MoeTorchChecks.cmake) on the given values: exit 0 and "torch checks
# passed", or the check's fatal error.
include(${CMAKE_CURRENT_LIST_DIR}/../../cmake/MoeTorchChecks.cmake)
moe_check_torch()
message(STATUS "torch checks passed: ${TORCH_LIBRARY}")
