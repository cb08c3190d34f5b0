# CTest `install_consumer`: cmake -P script, run from tests/CMakeLists.txt with
#   SIGATTN_SOURCE_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, GENERATOR, and optionally MAKE_PROGRAM,
#   CXX_COMPILER, CUDA_COMPILER, CUDA_HOST_COMPILER.
# 1. configures, builds and installs sigattn (tests, bench and examples off) into WORK_DIR/prefix;
# 2. configures and builds the consumer against that prefix (find_package(sigattn CONFIG));
# 3. configures and builds the consumer again with add_subdirectory of the source tree;
# 4. and once more through FetchContent (declared with the source tree as its SOURCE_DIR).
# Every step must succeed. Nothing is run, so no GPU is needed.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS SIGATTN_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

# The same generator and compilers as the enclosing build; sm_80 only, Release, to stay quick.
set(common_args -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=80-real)
foreach(pair IN ITEMS MAKE_PROGRAM:CMAKE_MAKE_PROGRAM CXX_COMPILER:CMAKE_CXX_COMPILER
                      CUDA_COMPILER:CMAKE_CUDA_COMPILER CUDA_HOST_COMPILER:CMAKE_CUDA_HOST_COMPILER)
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 in)
  list(GET pair 1 out)
  if(DEFINED ${in} AND NOT "${${in}}" STREQUAL "")
    list(APPEND common_args "-D${out}=${${in}}")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(step)
  execute_process(COMMAND ${ARGN} COMMAND_ECHO STDOUT COMMAND_ERROR_IS_FATAL ANY)
endfunction()

message(STATUS "== install sigattn into ${prefix}")
step("${CMAKE_COMMAND}" -S "${SIGATTN_SOURCE_DIR}" -B "${WORK_DIR}/sigattn" ${common_args}
     -DSIGATTN_BUILD_TESTS=OFF -DSIGATTN_BUILD_BENCH=OFF -DSIGATTN_BUILD_EXAMPLES=OFF
     -DSIGATTN_INSTALL=ON "-DCMAKE_INSTALL_PREFIX=${prefix}")
step("${CMAKE_COMMAND}" --build "${WORK_DIR}/sigattn")
step("${CMAKE_COMMAND}" --install "${WORK_DIR}/sigattn")

message(STATUS "== consumer through find_package(sigattn CONFIG)")
step("${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/find_package" ${common_args}
     "-DCMAKE_PREFIX_PATH=${prefix}")
step("${CMAKE_COMMAND}" --build "${WORK_DIR}/find_package")

message(STATUS "== consumer through add_subdirectory(${SIGATTN_SOURCE_DIR})")
step("${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/add_subdirectory"
     ${common_args} "-DSIGATTN_SOURCE_DIR=${SIGATTN_SOURCE_DIR}")
step("${CMAKE_COMMAND}" --build "${WORK_DIR}/add_subdirectory")

message(STATUS "== consumer through FetchContent(SOURCE_DIR ${SIGATTN_SOURCE_DIR})")
step("${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/fetch_content"
     ${common_args} "-DSIGATTN_FETCH_SOURCE_DIR=${SIGATTN_SOURCE_DIR}")
step("${CMAKE_COMMAND}" --build "${WORK_DIR}/fetch_content")

message(STATUS "== install_consumer: all three consumers built")
