// Catch2's standard main for the CPU test executables (compiled once, into sigattn_cpu_main).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
