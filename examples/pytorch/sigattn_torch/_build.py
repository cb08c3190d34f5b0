"""Builds (once) and loads the C++/CUDA extension that registers ``sigattn::fwd`` and ``sigattn::bwd``.

Two translation units, compiled in parallel: ``csrc/sigattn_ops.cpp`` (the PyTorch operators; it
includes only ``<sigattn/api.hpp>``) and ``csrc/sigattn_kernels.cu`` (the library's definitions
and every kernel, compiled once). The build uses ``torch.utils.cpp_extension.load`` when Ninja is
available, and otherwise calls the compilers directly; both cache the result and rebuild only when a
source, a header or a flag changed.

Environment:

``SIGATTN_TORCH_ARCH``
    CUDA architectures, ``;``- or ``,``-separated, e.g. ``90a`` or ``80;90a`` (default: the
    architecture of GPU 0, with ``90a`` for compute capability 9.0; ``80;90a`` without a GPU).
``SIGATTN_TORCH_BUILD_DIR``
    Where objects and the shared library go (default ``examples/pytorch/build/<tag>``).
``SIGATTN_TORCH_LIB``
    A prebuilt shared library to load instead of building.
``SIGATTN_TORCH_BUILDER``
    ``ninja`` (``cpp_extension.load``) or ``direct`` (compiler calls); default: ``ninja`` when
    available.
``SIGATTN_ROOT``
    The sigattn repository (default: two levels above this package).
``SIGATTN_TORCH_VERBOSE``
    ``1``: print the build commands and the compilers' output.
``MAX_JOBS``
    Parallel compile jobs (there are only two translation units).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CSRC_DIR = PACKAGE_DIR / "csrc"
SOURCES = ("sigattn_ops.cpp", "sigattn_kernels.cu")
EXTENSION_NAME = "sigattn_torch_ops"

_loaded_path: str | None = None


def repo_root() -> Path:
    """The sigattn repository whose ``include/`` the extension is built from."""
    root = Path(os.environ.get("SIGATTN_ROOT", PACKAGE_DIR.parents[2]))
    if not (root / "include" / "sigattn" / "api.hpp").is_file():
        raise RuntimeError(
            f"sigattn_torch: no include/sigattn/api.hpp under {root}; set SIGATTN_ROOT to the "
            "sigattn repository")
    return root


def library_version(root: Path) -> str:
    """The version in the top-level CMakeLists.txt (``project(sigattn VERSION x.y.z``)."""
    text = (root / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*sigattn\s+VERSION\s+(\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise RuntimeError("sigattn_torch: no 'project(sigattn VERSION x.y.z' in CMakeLists.txt")
    return ".".join(m.groups())


def write_version_header(root: Path, build_dir: Path) -> Path:
    """Writes ``<build_dir>/include/sigattn/version.hpp`` from ``cmake/version.hpp.in``, as CMake's
    configure_file would, and returns that include directory. The file is rewritten only when its
    text changes, so a rebuild is not triggered for nothing."""
    version = library_version(root)
    major, minor, patch = version.split(".")
    text = (root / "cmake" / "version.hpp.in").read_text()
    for key, value in (("@PROJECT_VERSION_MAJOR@", major), ("@PROJECT_VERSION_MINOR@", minor),
                       ("@PROJECT_VERSION_PATCH@", patch), ("@PROJECT_VERSION@", version)):
        text = text.replace(key, value)
    include_dir = build_dir / "include"
    header = include_dir / "sigattn" / "version.hpp"
    header.parent.mkdir(parents=True, exist_ok=True)
    if not header.is_file() or header.read_text() != text:
        header.write_text(text)
    return include_dir


def cuda_archs() -> list[str]:
    """Architectures to compile for, as nvcc names them without the ``sm_`` (``90a``, ``80``)."""
    env = os.environ.get("SIGATTN_TORCH_ARCH", "").strip()
    if env:
        return [a.strip().replace(".", "") for a in re.split(r"[;,\s]+", env) if a.strip()]
    import torch

    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        arch = f"{major}{minor}"
        return [arch + "a" if arch == "90" else arch]
    return ["80", "90a"]


def gencode_flags(archs: list[str]) -> list[str]:
    return [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]


def default_build_dir(archs: list[str]) -> Path:
    import torch

    env = os.environ.get("SIGATTN_TORCH_BUILD_DIR")
    if env:
        return Path(env)
    tag = f"torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}-sm{'_'.join(archs)}"
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
    return PACKAGE_DIR.parent / "build" / tag


def _flags(archs: list[str]) -> tuple[list[str], list[str]]:
    """Extra C++ and CUDA flags (include paths are added separately). The Hopper rows of the
    registry exist only in sm_90a code, so they are registered (SIGATTN_ENABLE_SM90A=1) exactly
    when sm_90a is built, as the project's CMake does."""
    defines = ["-DSIGATTN_ENABLE_SM90A=1"] if "90a" in archs else []
    cxx = ["-O3"] + defines
    cuda = ["-O3", "-lineinfo"] + defines + gencode_flags(archs)
    return cxx, cuda


def _use_ninja() -> bool:
    choice = os.environ.get("SIGATTN_TORCH_BUILDER", "").strip().lower()
    if choice in ("ninja", "direct"):
        return choice == "ninja"
    if choice:
        raise RuntimeError(f"sigattn_torch: SIGATTN_TORCH_BUILDER={choice!r}: use ninja or direct")
    from torch.utils.cpp_extension import is_ninja_available

    return is_ninja_available()


def build(verbose: bool = False) -> str:
    """Builds the extension if needed and returns the path of the shared library."""
    prebuilt = os.environ.get("SIGATTN_TORCH_LIB")
    if prebuilt:
        return prebuilt
    root = repo_root()
    archs = cuda_archs()
    build_dir = default_build_dir(archs)
    build_dir.mkdir(parents=True, exist_ok=True)
    gen_include = write_version_header(root, build_dir)
    includes = [str(gen_include), str(root / "include")]
    cxx_flags, cuda_flags = _flags(archs)
    sources = [str(CSRC_DIR / s) for s in SOURCES]
    with _build_lock(build_dir):
        if _use_ninja():
            from torch.utils.cpp_extension import load

            # cpp_extension.load() guards its build with a `lock` file that a killed process
            # leaves behind, after which every later load() waits forever. Under our own lock
            # (an flock, released by the kernel when its holder dies) such a file is stale.
            (build_dir / "lock").unlink(missing_ok=True)
            return load(name=EXTENSION_NAME, sources=sources, extra_include_paths=includes,
                        extra_cflags=cxx_flags, extra_cuda_cflags=cuda_flags,
                        build_directory=str(build_dir), is_python_module=False, verbose=verbose)
        return _build_direct(root, build_dir, sources, includes, cxx_flags, cuda_flags, verbose)


@contextlib.contextmanager
def _build_lock(build_dir: Path):
    """One build at a time per build directory, across processes."""
    with open(build_dir / "sigattn_torch.flock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_library(verbose: bool = False) -> str:
    """Builds if needed and loads the operators into ``torch.ops.sigattn``; idempotent."""
    global _loaded_path
    if _loaded_path is None:
        import torch

        verbose = verbose or os.environ.get("SIGATTN_TORCH_VERBOSE", "") not in ("", "0")

        path = build(verbose=verbose)
        if os.environ.get("SIGATTN_TORCH_LIB") or not _use_ninja():
            torch.ops.load_library(path)  # cpp_extension.load() has already loaded its library
        _loaded_path = path
    return _loaded_path


# --- The direct build (no Ninja) ------------------------------------------------------------------


def _direct_commands(build_dir: Path, sources: list[str], includes: list[str],
                     cxx_flags: list[str], cuda_flags: list[str]):
    import torch
    from torch.utils import cpp_extension

    cuda_home = cpp_extension.CUDA_HOME
    if not cuda_home:
        raise RuntimeError("sigattn_torch: no CUDA toolkit found (set CUDA_HOME)")
    nvcc = str(Path(cuda_home) / "bin" / "nvcc")
    cxx = os.environ.get("CXX", "c++")
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    inc = [f"-I{p}" for p in includes]
    sys_inc = []
    for p in cpp_extension.include_paths("cuda"):
        sys_inc += ["-isystem", p]
    objects, compiles = [], []
    for src in sources:
        obj = str(build_dir / (Path(src).name + ".o"))
        objects.append(obj)
        if src.endswith(".cu"):
            cmd = [nvcc, "-std=c++17", "--compiler-options", "-fPIC", "--expt-relaxed-constexpr",
                   abi] + inc + sys_inc + cuda_flags + ["-c", src, "-o", obj]
        else:
            cmd = [cxx, "-std=c++17", "-fPIC", abi] + inc + sys_inc + cxx_flags + ["-c", src, "-o", obj]
        compiles.append(cmd)
    lib = str(build_dir / f"{EXTENSION_NAME}.so")
    link = [cxx, "-shared"] + objects + ["-o", lib]
    for p in cpp_extension.library_paths("cuda"):
        link += [f"-L{p}", f"-Wl,-rpath,{p}"]
    link += ["-lc10", "-lc10_cuda", "-ltorch_cpu", "-ltorch_cuda", "-ltorch", "-lcudart"]
    return compiles, link, lib


def _inputs_digest(root: Path, sources: list[str], commands) -> str:
    """A digest of the commands and of every file the build reads from this repository."""
    h = hashlib.sha256(json.dumps(commands).encode())
    files = sorted((root / "include").rglob("*")) + [Path(s) for s in sources]
    for f in files:
        if f.is_file():
            h.update(str(f).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _build_direct(root: Path, build_dir: Path, sources: list[str], includes: list[str],
                  cxx_flags: list[str], cuda_flags: list[str], verbose: bool) -> str:
    compiles, link, lib = _direct_commands(build_dir, sources, includes, cxx_flags, cuda_flags)
    stamp = build_dir / "build.stamp"
    digest = _inputs_digest(root, sources, [compiles, link])
    if Path(lib).is_file() and stamp.is_file() and stamp.read_text() == digest:
        return lib

    def run(cmd):
        if verbose:
            print("sigattn_torch:", shlex.join(cmd), flush=True)
        start = time.time()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"sigattn_torch: build step failed ({shlex.join(cmd)}):\n{proc.stdout}")
        if verbose and proc.stdout:
            print(proc.stdout, flush=True)
        return time.time() - start

    jobs = max(1, int(os.environ.get("MAX_JOBS", len(compiles))))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, compiles))
    run(link)
    stamp.write_text(digest)
    return lib
