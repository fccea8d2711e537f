"""Which of two backends is faster for a configuration, measured once on this machine and cached.

``auto`` asks this when both the torch and the fused backend can run a stack: both are timed on random data
of the same shape (batch and length rounded up to powers of two), forward and, when gradients are wanted,
backward, alternating, best of five: with fewer rounds one unlucky round (another process taking a core) can
decide for good, since the choice is cached. Fused is chosen only when it wins by more than 5%, so that auto
is never slower than torch by more than the noise of the measurement. Results are kept in memory and in
``autotune.json`` beside the compiled extension (or the file LSTMKIT_AUTOTUNE_CACHE names);
``LSTMKIT_AUTOTUNE=0`` turns measuring off (auto then prefers torch whenever it can run).
"""

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

import torch

from ..core.step import CellWeights
from . import extension
from .spec import StackSpec

_log = logging.getLogger(__name__)
MARGIN = 1.05
ROUNDS = 5
setup_seconds = 0.0  # spent in this process timing backends
_lock = threading.Lock()
_choices: dict[str, str] = {}
_loaded = False


def enabled() -> bool:
    return os.environ.get("LSTMKIT_AUTOTUNE", "1") not in ("0", "")


def _bucket(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@functools.cache
def _fields(spec: StackSpec) -> str:
    """The spec's part of a key, made once per spec: auto asks on every forward, and asdict takes microseconds
    that count on the small models."""
    return ",".join(f"{k}={v}" for k, v in asdict(spec).items())


def _key(spec: StackSpec, batch: int, steps: int, training: bool, grad: bool) -> str:
    fields = _fields(spec)
    threads = torch.get_num_threads()
    amp = str(torch.get_autocast_dtype("cpu")).removeprefix("torch.") if torch.is_autocast_enabled("cpu") else "off"
    return f"{fields}|B{_bucket(batch)}|T{_bucket(steps)}|train={training}|grad={grad}|threads={threads}|amp={amp}"


def _store() -> str:
    """In the folder of this build of the extension (a new build, new kernels, measures again), unless
    LSTMKIT_AUTOTUNE_CACHE names another file (tests use one of their own, to measure as a first run does)."""
    return os.environ.get("LSTMKIT_AUTOTUNE_CACHE") or str(
        extension.cache_dir() / extension.build_name() / "autotune.json"
    )


def _load_file() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        with open(_store()) as f:
            _choices.update(json.load(f))
    except (OSError, ValueError):
        pass


def _save_file() -> None:
    try:
        os.makedirs(os.path.dirname(_store()), exist_ok=True)
        tmp = _store() + f".{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(_choices, f, indent=0)
        os.replace(tmp, _store())
    except OSError:
        pass  # a cache that cannot be written only means measuring again next time


def _random_weights(spec: StackSpec) -> list[CellWeights]:
    gen = torch.Generator().manual_seed(0)
    gates, weights = 4 * spec.hidden_size, []
    for layer in range(spec.num_layers):
        for _ in range(spec.num_directions):
            inputs = spec.layer_input_size(layer)

            def rand(*shape: int) -> torch.Tensor:
                return (torch.rand(*shape, generator=gen) - 0.5) * 0.2

            ln = (rand(gates) + 1, rand(gates) + 1, rand(spec.hidden_size) + 1, rand(spec.hidden_size))
            weights.append(CellWeights(
                rand(gates, inputs).requires_grad_(), rand(gates, spec.hidden_size).requires_grad_(),
                rand(gates) if spec.bias else None, rand(gates) if spec.bias else None, None,
                *(ln if spec.layer_norm else (None,) * 4),
            ))
    return weights


def _time(run: Callable, spec: StackSpec, batch: int, steps: int, training: bool, grad: bool) -> Callable[[], float]:
    x = torch.randn(batch, steps, spec.input_size, requires_grad=grad)
    rows = spec.num_layers * spec.num_directions
    state = (torch.zeros(rows, batch, spec.hidden_size), torch.zeros(rows, batch, spec.hidden_size))
    weights = _random_weights(spec)

    def once() -> float:
        start = time.perf_counter()
        with torch.set_grad_enabled(grad):
            y, _ = run(spec, x, state, weights, None, training)
            if grad:
                y.sum().backward()
        return time.perf_counter() - start

    return once


def choose(spec: StackSpec, batch: int, steps: int, *, training: bool, runners: dict[str, Callable]) -> str:
    """"fused" or "torch" for this configuration: the measured faster one (torch unless fused wins by 5%)."""
    grad = torch.is_grad_enabled()
    key = _key(spec, batch, steps, training, grad)
    with _lock:
        _load_file()
        if key in _choices:
            return _choices[key]
        global setup_seconds
        started = time.perf_counter()
        b, t = _bucket(batch), _bucket(steps)
        # timing draws random inputs, weights and dropout masks: the caller's random stream must come out as
        # it went in, or a seeded run would differ between the first process that measures and later ones
        with torch.random.fork_rng(devices=[]):
            timers = {name: _time(run, spec, b, t, training, grad) for name, run in runners.items()}
            for timer in timers.values():
                timer()  # warm-up: first-call costs (allocations, thread pools) are not what is compared
            best = {name: float("inf") for name in timers}
            for _ in range(ROUNDS):
                for name, timer in timers.items():
                    best[name] = min(best[name], timer())
        choice = "fused" if best["fused"] * MARGIN < best["torch"] else "torch"
        _log.info(
            "backend 'auto': measured fused %.2f ms, torch %.2f ms for batch %d x %d steps; using %r",
            best["fused"] * 1e3, best["torch"] * 1e3, b, t, choice,
        )
        _choices[key] = choice
        _save_file()
        setup_seconds += time.perf_counter() - started
        return choice


def explain(choice: str, batch: int, steps: int) -> str:
    """Why ``choose`` returned ``choice`` for a stack run on batch x steps, in words for a run's record (the
    measured times are logged when measured)."""
    other = "torch" if choice == "fused" else "fused"
    return f"{choice} measured faster than {other} on this machine for batch {_bucket(batch)} x {_bucket(steps)} steps"


def forget() -> None:
    """Drops the in-memory choices (tests)."""
    global _loaded
    with _lock:
        _choices.clear()
        _loaded = True
