# find_package(Torch) and checks around it, each failure naming its fix. A CUDA libtorch (needed
# for --device cuda; Debian's is CPU-only) is usually an unpacked pytorch.org download or the one
# inside a PyTorch pip install, and four things go wrong with those:
#   moe_find_torch()       does all of the below around find_package(Torch REQUIRED). A CUDA
#                          libtorch's config also appends its own nvcc flags to CMAKE_CUDA_FLAGS:
#                          -gencode for every architecture it supports (compute_50 ... sm_120a,
#                          which CUDA 13 refuses: "Unsupported gpu architecture 'compute_50'") and
#                          its diagnostics; moe-dist's kernels do not use libtorch and are built for
#                          MOE_CUDA_ARCHITECTURES with their own flags, so CMAKE_CUDA_FLAGS is put
#                          back as it was.
#   moe_torch_nvtx_hint()  before find_package(Torch). libtorch's CMake config before 2.9
#                          wants NVTX: nvtx3 headers from its source tree (absent from binary
#                          packages) or else the CUDA::nvToolsExt library, which CUDA 12.9 and later
#                          no longer ship (pytorch/pytorch#152756), so configuring stops with
#                          "target CUDA::nvToolsExt not found". Points it at the toolkit's
#                          header-only nvtx3 when nothing was given.
#   moe_check_torch()      after it. (1) The library must come from the same install as the
#                          config: with -DCMAKE_PREFIX_PATH at libtorch's share/cmake instead of
#                          its root, the config's find_library finds a system libtorch first
#                          (Debian's, installed by scripts/install-deps.sh) and mixes the two.
#                          (2) The C++ ABI must be the C++11 one: the pre-C++11 builds
#                          (_GLIBCXX_USE_CXX11_ABI=0: pip wheels before PyTorch 2.7,
#                          pytorch.org's "Pre-cxx11 ABI" downloads) cannot link with the C++
#                          libraries moe-dist uses from Debian (yaml-cpp, GoogleTest).
# tests/cmake/torch_checks.cmake runs moe_check_torch on good and bad inputs (ctest -R cmake_torch).

macro(moe_torch_nvtx_hint)
  if(MOE_CUDA AND NOT nvtx3_dir)
    find_package(CUDAToolkit QUIET)
    foreach(_moe_dir IN LISTS CUDAToolkit_INCLUDE_DIRS)
      if(NOT nvtx3_dir AND EXISTS "${_moe_dir}/nvtx3/nvToolsExt.h")
        set(nvtx3_dir "${_moe_dir}" CACHE PATH "Folder holding nvtx3/ (for libtorch's CMake config)")
      endif()
    endforeach()
  endif()
endmacro()

function(moe_check_torch)
  get_filename_component(_lib "${TORCH_LIBRARY}" REALPATH)
  get_filename_component(_prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
  string(FIND "${_lib}/" "${_prefix}/" _at)
  if(NOT _at EQUAL 0)
    message(FATAL_ERROR
      "libtorch: the CMake config of the libtorch at ${TORCH_INSTALL_PREFIX} found the library "
      "${TORCH_LIBRARY}, which belongs to another libtorch. Pass the libtorch's root folder (the one "
      "holding lib/ and share/) as -DCMAKE_PREFIX_PATH=..., not its share/cmake, and start from a "
      "fresh build folder.")
  endif()
  if("${TORCH_CXX_FLAGS}" MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    message(FATAL_ERROR
      "libtorch: ${TORCH_INSTALL_PREFIX} is built with the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0); "
      "moe-dist's other C++ libraries (yaml-cpp, GoogleTest) use the C++11 ABI and the two cannot be "
      "linked together. Use a C++11-ABI libtorch: pytorch.org's \"cxx11 ABI\" download for your CUDA, "
      "or the one inside a PyTorch 2.7 or later pip install.")
  endif()
endfunction()

macro(moe_find_torch)
  moe_torch_nvtx_hint()
  set(_moe_cuda_flags_before_torch "${CMAKE_CUDA_FLAGS}")
  find_package(Torch REQUIRED)
  set(CMAKE_CUDA_FLAGS "${_moe_cuda_flags_before_torch}")
  moe_check_torch()
endmacro()
