# Toolchain detection shared by the two CMake entry points: the repository root (plugins + C++ runner) and
# edgedistill/plugins (what `edgedistill plugins build` configures from an installed package). Sets
# EDGEDISTILL_HAVE_CUDA, EDGEDISTILL_HAVE_TENSORRT, TensorRT_INCLUDE_DIR and TensorRT_nvinfer_LIBRARY.
#
# CUDA is enabled when a CUDA compiler is found (EDGEDISTILL_CUDA=AUTO, the default); without one, the library holds
# the host reference only, so the algorithm tests run on any machine with a C++17 compiler. (`project(... CUDA)`
# would make configuration fail there, hence check_language + enable_language.)
#
# Default CUDA architectures (CMAKE_CUDA_ARCHITECTURES unset), chosen by the nvcc version:
#   nvcc >= 13.0        86-real;87-real;89-real;90      Xavier (sm_72) was removed in CUDA 13: build for it with 12.x
#   11.8 <= nvcc < 13   72-real;86-real;87-real;89-real;90
#   11.4 <= nvcc < 11.8 72-real;86-real;87              (JetPack 5.1: CUDA 11.4 on Xavier / Orin; oldest supported)
# The last entry also embeds PTX, so newer GPUs (Blackwell, sm_100/120) JIT-compile it.
include_guard(GLOBAL)

set(EDGEDISTILL_CUDA AUTO CACHE STRING "Build the CUDA kernel: AUTO (if nvcc is found), ON, OFF")
set_property(CACHE EDGEDISTILL_CUDA PROPERTY STRINGS AUTO ON OFF)
set(TensorRT_ROOT "" CACHE PATH "TensorRT install prefix (include/NvInfer.h, lib/libnvinfer.so); empty: system paths")

set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

set(EDGEDISTILL_HAVE_CUDA OFF)
if(NOT EDGEDISTILL_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(edfa_user_archs OFF)
    if(DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(edfa_user_archs ON)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    if(NOT edfa_user_archs)
      if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 13.0)
        set(edfa_archs 86-real 87-real 89-real 90)
      elseif(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 11.8)
        set(edfa_archs 72-real 86-real 87-real 89-real 90)
      elseif(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 11.4)
        set(edfa_archs 72-real 86-real 87)
      else()
        message(FATAL_ERROR "CUDA ${CMAKE_CUDA_COMPILER_VERSION} is too old: edgedistill needs CUDA >= 11.4")
      endif()
      set(CMAKE_CUDA_ARCHITECTURES "${edfa_archs}" CACHE STRING "CUDA architectures" FORCE)
    endif()
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(EDGEDISTILL_HAVE_CUDA ON)
    message(STATUS "edgedistill: CUDA ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
  elseif(EDGEDISTILL_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EDGEDISTILL_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER or PATH)")
  else()
    message(STATUS "edgedistill: no CUDA compiler found; building the host reference only")
  endif()
else()
  message(STATUS "edgedistill: EDGEDISTILL_CUDA=OFF; building the host reference only")
endif()

# TensorRT (plugin and runner): headers + libnvinfer under TensorRT_ROOT, or the system paths JetPack uses.
find_path(TensorRT_INCLUDE_DIR NvInfer.h HINTS ${TensorRT_ROOT} ENV TensorRT_ROOT
  PATH_SUFFIXES include include/x86_64-linux-gnu include/aarch64-linux-gnu)
find_library(TensorRT_nvinfer_LIBRARY NAMES nvinfer nvinfer_10 HINTS ${TensorRT_ROOT} ENV TensorRT_ROOT
  PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu lib/aarch64-linux-gnu)
set(EDGEDISTILL_HAVE_TENSORRT OFF)
if(TensorRT_INCLUDE_DIR AND TensorRT_nvinfer_LIBRARY)
  set(EDGEDISTILL_HAVE_TENSORRT ON)
endif()

