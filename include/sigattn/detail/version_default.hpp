// sigattn version macros for a copy of include/ used without CMake (vendored into another tree and
// compiled with plain nvcc or a C++ compiler). CMake generates <sigattn/version.hpp> from
// cmake/version.hpp.in into the build and install trees; api.hpp includes that header when it is on
// the include path and this one otherwise. The ctest `vendored_include` checks that the two agree
// with project(sigattn VERSION ...) in CMakeLists.txt: bump them together.
#pragma once

#define SIGATTN_VERSION_MAJOR 0
#define SIGATTN_VERSION_MINOR 1
#define SIGATTN_VERSION_PATCH 0
/// "MAJOR.MINOR.PATCH"
#define SIGATTN_VERSION_STRING "0.1.0"
/// MAJOR * 10000 + MINOR * 100 + PATCH, for preprocessor comparisons.
#define SIGATTN_VERSION \
  (SIGATTN_VERSION_MAJOR * 10000 + SIGATTN_VERSION_MINOR * 100 + SIGATTN_VERSION_PATCH)
