"""Builds the fused backend's C++ extension on first use and caches it.

The sources ship with the package (csrc/: fused_lstm.cpp, the module's bindings, which includes the LSTM
kernels' headers into one translation unit: lstm_gates.h, the gate maths; lstm_buffers.h, scratch and
pooled buffers; lstm_matmul.h, the matrix kernels; lstm_layer.h, one layer's recurrence forward and
backward; lstm_stack.h, the stack's autograd node; lstm_inference.h, stepwise inference and sampling;
optim.cpp, the optimiser step; random.cpp, the masks' random draws) and are compiled with
torch.utils.cpp_extension the first time the fused backend is asked for, for this machine's CPU
(-march=native), into a cache folder named after a hash of the sources, the compiler flags and the torch
version: later processes load it in milliseconds.
``LSTMKIT_EXTENSIONS_DIR`` moves the cache (default: ~/.cache/lstmkit/extensions), and
``LSTMKIT_NO_EXTENSION=1`` disables the build (the fused backend then reports itself unavailable).
Building needs a C++ compiler and ninja; when either is missing, or the build fails, ``load()`` returns
None and ``unavailable_reason()`` says why, so that "auto" can fall back to another backend.
"""

import hashlib
import logging
import os
import platform
import shutil
import threading
import time
from pathlib import Path
from types import ModuleType

import torch

_log = logging.getLogger(__name__)
CSRC = Path(__file__).parent / "csrc"
SOURCES = sorted(CSRC.glob("*.cpp"))
CFLAGS = ("-O3", "-ffast-math", "-fopenmp", "-march=native", "-std=c++17")
LDFLAGS = ("-fopenmp",)  # the OpenMP runtime torch itself uses

_lock = threading.Lock()
_state: dict[str, object] = {}  # "module" or "reason", once decided
setup_seconds = 0.0  # spent in this process building or loading the extension


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "lstmkit" / "extensions"
    return Path(os.environ.get("LSTMKIT_EXTENSIONS_DIR", default))


def build_name() -> str:
    """The name of this build of the extension: a hash of its sources and headers, where they lie, flags,
    torch version and machine. The folder counts because the build rules name the sources by path: two
    installs sharing one build folder would rebuild it each time the other one loaded it."""
    key = hashlib.sha256()
    key.update(str(CSRC.resolve()).encode())
    for path in SOURCES + sorted(CSRC.glob("*.h")):
        key.update(path.name.encode())
        key.update(path.read_bytes())
    key.update(" ".join(CFLAGS + LDFLAGS).encode())  # tuples: cpp_extension extends the lists it is given
    key.update(torch.__version__.encode())
    key.update(platform.machine().encode())
    return f"lstmkit_fused_{key.hexdigest()[:12]}"


def _missing_tool() -> str | None:
    if os.environ.get("LSTMKIT_NO_EXTENSION", "") not in ("", "0"):
        return "the C++ extension is disabled by LSTMKIT_NO_EXTENSION"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r} not found) to build the fused extension"
    try:
        import ninja  # noqa: F401
    except ImportError:
        if shutil.which("ninja") is None:
            return "ninja is not installed, so the fused extension cannot be built"
    return None


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    name = build_name()
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / f"{name}.so").exists():
        _log.info("building the fused LSTM extension (once per machine; about a minute) in %s", folder)
    return cpp_extension.load(
        name=name,
        sources=[str(path) for path in SOURCES],
        extra_cflags=list(CFLAGS),
        extra_ldflags=list(LDFLAGS),
        build_directory=str(folder),
        verbose=False,
    )


def load() -> ModuleType | None:
    """The compiled extension, building it if needed; None when it cannot be built (see unavailable_reason)."""
    global setup_seconds
    with _lock:
        if not _state:
            started = time.perf_counter()
            reason = _missing_tool()
            if reason is None:
                try:
                    _state["module"] = _build()
                except Exception as exc:  # a failed build must never break the package
                    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    reason = f"the fused extension failed to build: {first_line}"
            if reason is not None:
                _state["reason"] = reason
            setup_seconds += time.perf_counter() - started
        return loaded()


def loaded() -> ModuleType | None:
    """The extension if an earlier load() built or found it; never starts a build."""
    module = _state.get("module")
    return module if isinstance(module, ModuleType) else None


def unavailable_reason() -> str | None:
    """Why the extension cannot be used on this machine, or None when it loads."""
    load()
    reason = _state.get("reason")
    return str(reason) if reason is not None else None


def reset() -> None:
    """Forgets the cached decision (for tests that change the environment)."""
    with _lock:
        _state.clear()
