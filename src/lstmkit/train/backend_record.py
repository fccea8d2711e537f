"""Which backend trained a model, for the run's record, and pinning it so that a resumed or repeated run trains
on the same one. Not the backend decision itself (backends.plan); this module only reads what the model's
recurrent stacks ran and names a backend for them.

``auto`` picks a backend per stack by what can run it and, between torch and fused, by timing on this machine;
the two differ in the last bits and in their dropout draws, so a seed reproduces a run exactly only on the same
backend. The trainer asks the stacks after the first training step which plan they ran, records it
(``describe``: "fused", or "encoder.lstm=fused,decoder=torch" when they differ) and trains the rest of the run,
evaluation included, on it (``pin``); a resumed run, or one started from its config.json, pins the recorded one
from the first step.
"""

from torch import nn

from ..errors import LstmkitError
from ..nn import GRU, LSTM, RNN

_STACKS = (LSTM, GRU, RNN)


def stacks(model: nn.Module) -> dict[str, nn.Module]:
    """The recurrent stacks of a model, by their module name ("" for a model that is one)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, _STACKS)}


def used(model: nn.Module) -> dict[str, tuple[str, str]]:
    """For each stack that has run a forward: (backend, why) of its last plan."""
    return {
        name: (m.last_plan_.name, m.last_plan_.reason)
        for name, m in stacks(model).items() if getattr(m, "last_plan_", None) is not None
    }


def describe(backends: dict[str, str]) -> str:
    """One backend name when every stack ran the same one, else "name=backend" pairs joined by commas."""
    names = set(backends.values())
    if len(names) == 1:
        return names.pop()
    return ",".join(f"{name}={backend}" for name, backend in sorted(backends.items()))


def parse(model: nn.Module, described: str) -> dict[str, str]:
    """The backend of each stack of ``model`` from ``describe``'s text."""
    found = stacks(model)
    if "=" not in described:
        return {name: described for name in found}
    pairs = dict(item.split("=", 1) for item in described.split(","))
    if set(pairs) != set(found):
        raise LstmkitError(f"the recorded backends name the stacks {sorted(pairs)}, the model has {sorted(found)}")
    return pairs


def pin(model: nn.Module, backends: dict[str, str]) -> dict[str, str]:
    """Sets each stack's backend; returns the backends they had, to put back."""
    found = stacks(model)
    before = {name: m.backend for name, m in found.items()}
    for name, backend in backends.items():
        found[name].backend = backend
    return before
