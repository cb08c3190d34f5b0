// sigattn_bench: the GPU's SM clock, board power and clock-limit reasons, read through NVML while a
// row's timed runs are in flight. NVML is opened at run time (dlopen of libnvidia-ml.so.1, which
// the driver installs), so the benchmark neither links it nor needs its headers; without it (no
// driver, a container without the library) every reading is simply absent.
//
// Why: on the H200 the heavier kernels reach the 700 W board limit and the SM clock drops from
// 1980 MHz to about 1500-1850 MHz within a fraction of a second (docs/performance.md, session 14).
// A short row measured right after a long one runs at the clock the long one left, so its time
// depends on the row before it. The per-row clock makes that visible. The power NVML reports is an
// average over its own window (about a second on this board), so it lags the load: a hint only.
#pragma once

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdint>

namespace sigattn_bench {

/// One reading. `reasons` is NVML's clocks-event (throttle) bit set: 0x4 the software power cap,
/// 0x8 hardware slowdown, 0x20 / 0x40 software / hardware thermal slowdown.
struct ClockSample {
  unsigned sm_mhz = 0;
  unsigned power_mw = 0;
  unsigned long long reasons = 0;
};

class GpuClock {
 public:
  /// Opens NVML for the CUDA device `device`; available() says whether that worked.
  explicit GpuClock(int device) {
    lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib_ == nullptr) return;
    auto init = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlInit_v2"));
    auto by_bus = reinterpret_cast<int (*)(char const*, void**)>(
        dlsym(lib_, "nvmlDeviceGetHandleByPciBusId_v2"));
    clock_ = reinterpret_cast<int (*)(void*, int, unsigned*)>(
        dlsym(lib_, "nvmlDeviceGetClockInfo"));
    power_ = reinterpret_cast<int (*)(void*, unsigned*)>(dlsym(lib_, "nvmlDeviceGetPowerUsage"));
    // The newer name first; drivers before it have only the older (same signature and bits).
    reasons_ = reinterpret_cast<int (*)(void*, unsigned long long*)>(
        dlsym(lib_, "nvmlDeviceGetCurrentClocksEventReasons"));
    if (reasons_ == nullptr)
      reasons_ = reinterpret_cast<int (*)(void*, unsigned long long*)>(
          dlsym(lib_, "nvmlDeviceGetCurrentClocksThrottleReasons"));
    shutdown_ = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlShutdown"));
    char bus_id[32] = {};
    if (init == nullptr || by_bus == nullptr || clock_ == nullptr || shutdown_ == nullptr ||
        cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), device) != cudaSuccess) {
      close();
      return;
    }
    if (init() != 0) {  // NVML_SUCCESS is 0
      shutdown_ = nullptr;
      close();
      return;
    }
    if (by_bus(bus_id, &handle_) != 0) {
      close();
      return;
    }
    ClockSample probe;
    if (!sample(probe)) close();
  }
  ~GpuClock() { close(); }
  GpuClock(GpuClock const&) = delete;
  GpuClock& operator=(GpuClock const&) = delete;

  bool available() const { return handle_ != nullptr; }

  /// Reads the SM clock, and the power and reasons where the driver reports them (0 otherwise).
  bool sample(ClockSample& s) const {
    if (handle_ == nullptr) return false;
    constexpr int kNvmlClockSm = 1;
    if (clock_(handle_, kNvmlClockSm, &s.sm_mhz) != 0) return false;
    if (power_ == nullptr || power_(handle_, &s.power_mw) != 0) s.power_mw = 0;
    if (reasons_ == nullptr || reasons_(handle_, &s.reasons) != 0) s.reasons = 0;
    return true;
  }

 private:
  void close() {
    if (shutdown_ != nullptr) shutdown_();
    shutdown_ = nullptr;
    handle_ = nullptr;
    if (lib_ != nullptr) dlclose(lib_);
    lib_ = nullptr;
  }

  void* lib_ = nullptr;
  void* handle_ = nullptr;
  int (*clock_)(void*, int, unsigned*) = nullptr;
  int (*power_)(void*, unsigned*) = nullptr;
  int (*reasons_)(void*, unsigned long long*) = nullptr;
  int (*shutdown_)() = nullptr;
};

}  // namespace sigattn_bench
