"""The GPU's SM clock and board power, sampled through NVML while timed runs are in flight.

The Python scripts' counterpart of bench/gpu_clock.hpp: NVML is opened at run time (ctypes on
libnvidia-ml.so.1, which the driver installs), so nothing needs its bindings; without it every
reading is None. A background thread reads the SM clock (MHz) and the board power (W) every
`period_s` between start() and stop(), which returns their means. The power NVML reports is an
average over its own window (about a second on the H200), so it lags the load: a hint only.

    clock = NvmlClock.for_torch_device(torch, 0)   # or NvmlClock("0000:1B:00.0")
    clock.start(); ...timed runs...; torch.cuda.synchronize(); mhz, watts = clock.stop()
"""

from __future__ import annotations

import ctypes
import statistics
import threading

_NVML_CLOCK_SM = 1


class NvmlClock:
    def __init__(self, pci_bus_id, period_s=0.005):
        self.period_s = period_s
        self._lib = None
        self._handle = ctypes.c_void_p()
        self._thread = None
        self._stop = threading.Event()
        self._mhz, self._watts = [], []
        if not pci_bus_id:
            return
        try:
            lib = ctypes.CDLL("libnvidia-ml.so.1")
            if lib.nvmlInit_v2() != 0:  # NVML_SUCCESS is 0
                return
            if lib.nvmlDeviceGetHandleByPciBusId_v2(pci_bus_id.encode(),
                                                    ctypes.byref(self._handle)) != 0:
                lib.nvmlShutdown()
                return
            self._lib = lib
        except (OSError, AttributeError):
            self._lib = None

    @classmethod
    def for_torch_device(cls, torch, device=0, period_s=0.005):
        """The NVML device of CUDA device `device`, found by its PCI address (unavailable when
        this torch does not report one)."""
        props = torch.cuda.get_device_properties(device)
        try:
            # (The form cudaDeviceGetPCIBusId gives, which bench/gpu_clock.hpp passes to NVML.)
            bus_id = (f"{props.pci_domain_id:04X}:{props.pci_bus_id:02X}:"
                      f"{props.pci_device_id:02X}.0")
        except AttributeError:
            bus_id = None
        return cls(bus_id, period_s)

    def available(self):
        return self._lib is not None

    def _read(self):
        mhz, mw = ctypes.c_uint(), ctypes.c_uint()
        if self._lib.nvmlDeviceGetClockInfo(self._handle, _NVML_CLOCK_SM, ctypes.byref(mhz)) == 0:
            self._mhz.append(mhz.value)
        if self._lib.nvmlDeviceGetPowerUsage(self._handle, ctypes.byref(mw)) == 0:
            self._watts.append(mw.value / 1000.0)

    def _run(self):
        while True:
            self._read()
            if self._stop.wait(self.period_s):
                return

    def start(self):
        """Begins sampling (a no-op without NVML)."""
        if self._lib is None:
            return
        self._mhz, self._watts = [], []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self):
        """Ends sampling: (mean SM MHz, mean W), each None without readings."""
        if self._thread is None:
            return None, None
        self._stop.set()
        self._thread.join()
        self._thread = None
        mean = lambda xs: statistics.mean(xs) if xs else None
        return mean(self._mhz), mean(self._watts)

    def close(self):
        if self._thread is not None:
            self.stop()
        if self._lib is not None:
            self._lib.nvmlShutdown()
            self._lib = None
