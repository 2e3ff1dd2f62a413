# The configure-time checks of the libtorch found (cmake/MoeTorchChecks.cmake), on fake install
# layouts: a matching C++11-ABI install passes; a library from another install, a sibling folder
# sharing the prefix's name, and a pre-C++11-ABI build each stop with the fix named.
moe_add_cli_test(cmake_torch_checks_ok REGEX "torch checks passed"
  COMMAND ${CMAKE_COMMAND} -DTORCH_INSTALL_PREFIX=/opt/libtorch -DTORCH_LIBRARY=/opt/libtorch/lib/libtorch.so
          "-DTORCH_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=1" -P ${PROJECT_SOURCE_DIR}/tests/cmake/torch_checks.cmake)
moe_add_cli_test(cmake_torch_checks_other_install EXPECT_FAIL
  REGEX "library /usr/lib/x86_64-linux-gnu/libtorch.so, which belongs to another"
  COMMAND ${CMAKE_COMMAND} -DTORCH_INSTALL_PREFIX=/opt/libtorch -DTORCH_LIBRARY=/usr/lib/x86_64-linux-gnu/libtorch.so
          -P ${PROJECT_SOURCE_DIR}/tests/cmake/torch_checks.cmake)
moe_add_cli_test(cmake_torch_checks_sibling_install EXPECT_FAIL REGEX "belongs to another libtorch"
  COMMAND ${CMAKE_COMMAND} -DTORCH_INSTALL_PREFIX=/opt/libtorch -DTORCH_LIBRARY=/opt/libtorch2/lib/libtorch.so
          -P ${PROJECT_SOURCE_DIR}/tests/cmake/torch_checks.cmake)
moe_add_cli_test(cmake_torch_checks_old_abi EXPECT_FAIL REGEX "is built with the pre-C\\+\\+11 ABI"
  COMMAND ${CMAKE_COMMAND} -DTORCH_INSTALL_PREFIX=/opt/libtorch -DTORCH_LIBRARY=/opt/libtorch/lib/libtorch.so
          "-DTORCH_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0" -P ${PROJECT_SOURCE_DIR}/tests/cmake/torch_checks.cmake)
