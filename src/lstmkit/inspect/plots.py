"""PNG figures of an inspection (matplotlib, Agg backend), returned as bytes so that the HTML page can embed
them and the caller can write them beside it."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .saturation import Saturation
from .trace import QUANTITIES, Trace

SHOWN = ("c", "f", "i", "o")
MAX_STEPS = 600  # steps drawn in the time plots; the HTML text shows everything


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def unit_figure(trace: Trace, unit: int, layers: list[int], direction: int = 0) -> bytes:
    """The unit's cell state and gates over time, one panel per layer; line breaks as grey ticks."""
    steps = min(len(trace.tokens), MAX_STEPS)
    fig, axes = plt.subplots(len(layers), 1, figsize=(9, 1.9 * len(layers) + 0.4), dpi=90, squeeze=False)
    breaks = [t for t, tok in enumerate(trace.tokens[:steps]) if tok == "\n"]
    for ax, layer in zip(axes[:, 0], layers, strict=True):
        for name in SHOWN:
            values = trace.unit(name, layer, unit, direction)[:steps]
            values = np.tanh(values) if name == "c" else values
            ax.plot(values, lw=1.4 if name == "c" else 0.8, label="tanh(c)" if name == "c" else QUANTITIES[name])
        for t in breaks:
            ax.axvline(t, color="grey", lw=0.4, alpha=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(f"layer {layer}")
    axes[0, 0].set_title(f"unit {unit}: cell state and gates over the first {steps} steps (grey: line breaks)")
    axes[0, 0].legend(fontsize=7, ncol=4, loc="lower right")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    return _png(fig)


def feature_figure(trace: Trace, features: dict[str, np.ndarray], top: list[dict], quantity: str) -> bytes:
    """For each feature with units, the feature (grey) and its best unit (standardised) over time."""
    best = [row for row in top if row["rank"] == 1]
    steps = min(len(trace.tokens), MAX_STEPS)
    fig, axes = plt.subplots(max(1, len(best)), 1, figsize=(9, 1.5 * max(1, len(best)) + 0.4), dpi=90, squeeze=False)
    for ax, row in zip(axes[:, 0], best, strict=False):
        feature = features[row["feature"]][:steps]
        values = trace.unit(quantity, row["layer"], row["unit"], row["direction"])[:steps]
        scale = lambda v: (v - v.mean()) / (v.std() or 1.0)  # noqa: E731
        ax.plot(scale(feature), color="grey", lw=1.0, label=row["feature"])
        ax.plot(np.sign(row["r"]) * scale(values), lw=1.0,
                label=f"layer {row['layer']} unit {row['unit']} (r = {row['r']:+.2f})")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_yticks([])
    axes[0, 0].set_title(f"each feature and the unit whose {QUANTITIES[quantity]} tracks it best (standardised)")
    fig.tight_layout()
    return _png(fig)


def saturation_figure(sat: Saturation) -> bytes:
    """Karpathy et al.'s view: each unit at (share of steps below 0.1, share above 0.9), one panel per gate."""
    fig, axes = plt.subplots(1, len(sat.gates), figsize=(9, 3.2), dpi=90)
    layers, directions = sat.low.shape[:2]
    names = {"i": "input gate", "f": "forget gate", "o": "output gate"}
    for k, (ax, gate) in enumerate(zip(axes, sat.gates, strict=True)):
        for layer in range(layers):
            for direction in range(directions):
                label = f"layer {layer}" + (" reverse" if direction else "")
                ax.scatter(sat.low[layer, direction, k], sat.high[layer, direction, k], s=8, alpha=0.6, label=label)
        ax.plot([0, 1], [1, 0], color="grey", lw=0.6)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(names[gate], fontsize=10)
        ax.set_xlabel("share of steps < 0.1")
    axes[0].set_ylabel("share of steps > 0.9")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)
