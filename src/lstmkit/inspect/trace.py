"""Per-step LSTM activations of a trained run on a user's text, as numpy arrays with named dimensions.

Owns loading a run for inspection (each task says through ``Task.text_view`` whether and how its text
becomes LSTM inputs) and the Trace container; features, saturation and the HTML page are in the neighbouring modules.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..errors import LstmkitError
from ..nn import LSTM
from ..tasks import registry
from ..tasks.base import Task
from ..train.runs import read_run_config

_log = logging.getLogger(__name__)

MAX_TOKENS = 20_000  # the reference path runs one step at a time; longer texts take minutes
QUANTITIES = {
    "c": "cell state",
    "h": "hidden state",
    "i": "input gate",
    "f": "forget gate",
    "o": "output gate",
    "g": "candidate",
}


@dataclass
class Subject:
    """What inspect needs from a run, whatever its task.

    Attributes:
        task: the run's task name (config.json "task").
        path: the run folder, or None for a model given in memory.
        lstm: the recurrent stack to trace.
        tokenize: text -> the tokens the model reads (characters for a character model).
        to_inputs: text -> the LSTM's inputs (1, T, I), e.g. embedded character ids.
    """

    task: str
    path: Path | None
    lstm: LSTM
    tokenize: Callable[[str], list[str]]
    to_inputs: Callable[[str], Tensor]


def _require_lstm(rnn: Any, path: Path | None) -> None:
    """Traces need gates: refuse GRU and plain RNN stacks, naming the run."""
    if not isinstance(rnn, LSTM):
        where = f"the run in {path}" if path is not None else "this model"
        raise LstmkitError(
            f"inspect shows LSTM gates and cell states, but {where} uses a {type(rnn).__name__}; "
            "train it with --cell lstm"
        )


def _from_predictor(predictor: Any, path: Path | None) -> Subject:
    """A Subject from a loaded predictor, through its task's ``text_view``."""
    task_name = getattr(getattr(predictor, "config", None), "task", None)
    if task_name not in registry.TASK_NAMES:
        raise LstmkitError(f"cannot inspect a {type(predictor).__name__}; give a run folder or a loaded model")
    view = registry.get(task_name).text_view(predictor)
    if view is None:
        readable = sorted(t.name for t in registry.all_tasks() if type(t).text_view is not Task.text_view)
        raise LstmkitError(f"inspect cannot read {task_name!r} runs yet; it reads runs of: {', '.join(readable)}")
    _require_lstm(view.lstm, path)
    return Subject(task_name, path, view.lstm, view.tokenize, view.to_inputs)


def load_subject(run: Any) -> Subject:
    """A Subject from a run folder (of any task that reads text with an LSTM) or a loaded predictor."""
    if isinstance(run, Subject):
        return run
    if not isinstance(run, (str, Path)):
        return _from_predictor(run, getattr(run, "path", None))
    path = Path(run)
    config = read_run_config(path)
    readable = sorted(t.name for t in registry.all_tasks() if type(t).text_view is not Task.text_view)
    if config.get("task") not in readable:
        raise LstmkitError(f"inspect cannot read {config.get('task')!r} runs yet; it reads runs of: "
                           f"{', '.join(readable)}")
    task = registry.get(config["task"])
    cell = config.get("model", {}).get("cell", "lstm") if isinstance(config.get("model"), dict) else "lstm"
    if cell != "lstm":
        raise LstmkitError(
            f"inspect shows LSTM gates and cell states, but the run in {path} uses a {cell.upper()}; "
            "train it with --cell lstm"
        )
    return _from_predictor(task.load(path), path)


@dataclass
class Trace:
    """Every layer's gates and states at every step of one text.

    Attributes:
        tokens: the T tokens read (characters for a character model).
        values: quantity -> array (L, D, T, H) = (layer, direction, time, unit); quantities "i", "f", "o"
            (gates), "g" (candidate), "c" (cell state) and "h" (o * tanh(c), before any projection).
        dims: the names of the array dimensions.
    """

    tokens: list[str]
    values: dict[str, np.ndarray]
    dims: tuple[str, ...] = field(default=("layer", "direction", "time", "unit"))

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise LstmkitError(f"unknown quantity {name!r}; choose one of: {', '.join(QUANTITIES)}")
        return self.values[name]

    @property
    def shape(self) -> dict[str, int]:
        """Size of each named dimension."""
        return dict(zip(self.dims, self.values["c"].shape, strict=True))

    def unit(self, name: str, layer: int, unit: int, direction: int = 0) -> np.ndarray:
        """One unit's ``name`` over time, (T,)."""
        return self[name][layer, direction, :, unit]

    def to_frame(self, name: str, layer: int = 0, direction: int = 0) -> pd.DataFrame:
        """``name`` of one layer as a DataFrame: rows are time steps (indexed by step and token), columns units."""
        index = pd.MultiIndex.from_arrays([np.arange(len(self.tokens)), self.tokens], names=["time", "token"])
        return pd.DataFrame(self[name][layer, direction], index=index)


@torch.no_grad()
def trace(run: Any, text: str) -> Trace:
    """Runs a trained LSTM over ``text`` and records its gates and cell states at every step.

    Args:
        run: a run folder (str or Path), a loaded text generator (``lstmkit.textgen.load(...)``) or text
            classifier (``lstmkit.classify.load(...)``).
        text: what to read; T tokens (characters for a character model, words for a classifier), at most
            MAX_TOKENS.

    Returns:
        A Trace with arrays of dimensions (layer, direction, time, unit).

    Example:
        >>> t = trace("runs/macbeth", "MACBETH. So foule and faire a day I have not seene.")
        >>> t["f"].shape    # (layers, directions, characters, units)
    """
    subject = load_subject(run)
    tokens = subject.tokenize(text)
    if not tokens:
        raise LstmkitError("the text to inspect is empty")
    if len(tokens) > MAX_TOKENS:
        raise LstmkitError(f"the text to inspect has {len(tokens)} tokens; the limit is {MAX_TOKENS}")
    subject.lstm.eval()
    x = subject.to_inputs(text)                                        # (1, T, I)
    _, _, gates = subject.lstm.trace(x)                                 # each (L, D, 1, T, H)
    values = {k: getattr(gates, k)[:, :, 0].float().numpy() for k in ("i", "f", "g", "o", "c")}  # (L, D, T, H)
    values["h"] = values["o"] * np.tanh(values["c"])                    # (L, D, T, H)
    return Trace(tokens, values)
