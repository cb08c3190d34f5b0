# CTest `vendored_include`: cmake -P script, run from tests/CMakeLists.txt with
#   SIGATTN_SOURCE_DIR, GENERATED_INCLUDE_DIR (the build's include dir holding the generated
#   sigattn/version.hpp), WORK_DIR, CXX_COMPILER, CUDA_COMPILER, CUDA_INCLUDE_DIRS, VERSION.
# A user who vendors sigattn copies include/ and nothing else. This test does the same, then
# 1. compiles host.cpp with the host C++ compiler against the bare copy (api.hpp must fall back to
#    its checked-in version header) and again with the generated include directory first; both
#    must report project(sigattn VERSION ...);
# 2. compiles and links main.cu (header-only mode) with plain nvcc against the bare copy, for
#    sm_80 and one registry row (head dim 64, bf16), so it stays a few seconds.
# Nothing is run, so no GPU is needed.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS SIGATTN_SOURCE_DIR GENERATED_INCLUDE_DIR WORK_DIR CXX_COMPILER CUDA_COMPILER
                     VERSION)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

set(here "${CMAKE_CURRENT_LIST_DIR}")
set(copy "${WORK_DIR}/include")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
file(COPY "${SIGATTN_SOURCE_DIR}/include/" DESTINATION "${copy}")
if(EXISTS "${copy}/sigattn/version.hpp")
  message(FATAL_ERROR "include/sigattn/version.hpp is in the source tree: it must stay generated "
                      "(cmake/version.hpp.in), with sigattn/detail/version_default.hpp as fallback")
endif()
if(NOT EXISTS "${GENERATED_INCLUDE_DIR}/sigattn/version.hpp")
  message(FATAL_ERROR "no generated ${GENERATED_INCLUDE_DIR}/sigattn/version.hpp")
endif()

string(REPLACE "." ";" parts "${VERSION}")
list(GET parts 0 major)
list(GET parts 1 minor)
list(GET parts 2 patch)
set(expect -DSIGATTN_EXPECT_MAJOR=${major} -DSIGATTN_EXPECT_MINOR=${minor}
           -DSIGATTN_EXPECT_PATCH=${patch} "-DSIGATTN_EXPECT_STRING=\"${VERSION}\"")
set(cuda_includes "")
foreach(dir IN LISTS CUDA_INCLUDE_DIRS)
  list(APPEND cuda_includes "-I${dir}")
endforeach()

function(step)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${WORK_DIR}" COMMAND_ECHO STDOUT
                  COMMAND_ERROR_IS_FATAL ANY)
endfunction()

message(STATUS "== host C++ compiler, bare copy of include/")
step("${CXX_COMPILER}" -std=c++17 -Wall -Werror "-I${copy}" ${cuda_includes} ${expect}
     -DSIGATTN_EXPECT_GENERATED=0 -c "${here}/host.cpp" -o host_bare.o)

message(STATUS "== host C++ compiler, CMake-generated include directory first")
step("${CXX_COMPILER}" -std=c++17 -Wall -Werror "-I${GENERATED_INCLUDE_DIR}" "-I${copy}"
     ${cuda_includes} ${expect} -DSIGATTN_EXPECT_GENERATED=1 -c "${here}/host.cpp"
     -o host_generated.o)

message(STATUS "== plain nvcc, bare copy of include/, header-only program")
set(nvcc_args -std=c++17 -gencode=arch=compute_80,code=sm_80 "-I${copy}"
    -DSIGATTN_ENABLE_HDIM_128=0 -DSIGATTN_ENABLE_FP16=0)
if(DEFINED CUDA_HOST_COMPILER AND NOT "${CUDA_HOST_COMPILER}" STREQUAL "")
  list(APPEND nvcc_args "-ccbin=${CUDA_HOST_COMPILER}")
endif()
step("${CUDA_COMPILER}" ${nvcc_args} "${here}/main.cu" -o vendored_main)

message(STATUS "== vendored_include: a bare copy of include/ compiles with and without CMake")
