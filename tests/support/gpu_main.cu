// Catch2 main of the GPU test executables (compiled once, into sigattn_gpu_main).
//
// Before running any test it asks for a CUDA device. With none (no driver, no device, or a device
// older than sm_80, the oldest architecture sigattn supports) it prints a one-line reason and exits
// with SIGATTN_TEST_SKIP_RETURN_CODE, which CTest's SKIP_RETURN_CODE reports as "skipped": a GPU
// suite that did not run must never read as passed. Listing tests or asking for help needs no GPU.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>

#ifndef SIGATTN_TEST_SKIP_RETURN_CODE
#define SIGATTN_TEST_SKIP_RETURN_CODE 77
#endif

namespace {

constexpr int kSkipReturnCode = SIGATTN_TEST_SKIP_RETURN_CODE;
constexpr int kMinComputeMajor = 8;

// True when the command line only asks Catch2 for information (no test runs).
bool only_lists(int argc, char* argv[]) {
  for (int i = 1; i < argc; ++i) {
    char const* arg = argv[i];
    if (std::strncmp(arg, "--list", 6) == 0 || std::strcmp(arg, "-l") == 0 ||
        std::strcmp(arg, "-t") == 0 || std::strcmp(arg, "-h") == 0 ||
        std::strcmp(arg, "-?") == 0 || std::strcmp(arg, "--help") == 0) {
      return true;
    }
  }
  return false;
}

// Returns 0 when a usable device is current, else prints why not and returns kSkipReturnCode.
int check_device() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n",
                err != cudaSuccess ? cudaGetErrorName(err) : "0 devices");
    return kSkipReturnCode;
  }
  int device = 0;
  int major = 0;
  int minor = 0;
  cudaDeviceProp prop{};
  if ((err = cudaGetDevice(&device)) != cudaSuccess ||
      (err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device)) !=
          cudaSuccess ||
      (err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device)) !=
          cudaSuccess ||
      (err = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
    std::printf("SKIPPED: cannot query CUDA device %d (%s)\n", device, cudaGetErrorName(err));
    return kSkipReturnCode;
  }
  if (major < kMinComputeMajor) {
    std::printf("SKIPPED: CUDA device %d (%s) is sm_%d%d; sigattn needs sm_%d0 or newer\n", device,
                prop.name, major, minor, kMinComputeMajor);
    return kSkipReturnCode;
  }
  int driver = 0;
  int runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::fprintf(stderr, "GPU %d: %s (sm_%d%d), driver %d, runtime %d\n", device, prop.name, major,
               minor, driver, runtime);
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (!only_lists(argc, argv)) {
    if (int skip = check_device(); skip != 0) return skip;
  }
  int result = Catch::Session().run(argc, argv);
  // Catch2 returns the number of failed assertions (capped at 255); 77 of them must not read as
  // "skipped".
  return result == kSkipReturnCode ? 1 : result;
}
