"""Figures of the memory experiment, as small PNG files (matplotlib, Agg backend)."""

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from .memory import MemoryResults

COLOURS = {"rnn": "#d62728", "gru": "#2ca02c", "lstm": "#1f77b4"}


def plot_error_vs_length(results: "MemoryResults", path: Path) -> None:
    """Test error (MSE, or accuracy for copy) against sequence length, one line per cell type, with the
    baseline (MSE 1/6 of always answering 1; accuracy 1/8 of guessing)."""
    metric, task = results.metric, results.config.task
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for cell in results.config.cells:
        rows = sorted((r for r in results.rows if r["cell"] == cell), key=lambda r: r["length"])
        ax.plot([r["length"] for r in rows], [r[metric] for r in rows], "o-", label=cell.upper(),
                color=COLOURS.get(cell))
    baseline = 1 / 6 if task == "adding" else 1 / 8
    ax.axhline(baseline, color="grey", ls="--", lw=1,
               label="answer 1 (MSE 0.167)" if task == "adding" else "guessing (1/8)")
    if task == "adding":
        ax.set_yscale("log")
        ax.set_ylabel("test MSE (log scale)")
    else:
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("test accuracy")
    ax.set_xlabel("sequence length" if task == "adding" else "delay (steps)")
    ax.set_xticks(sorted(results.config.lengths))
    budget = f"at most {results.config.steps} steps of batch {results.config.batch_size} per run"
    ax.set_title(f"{task} problem: {budget}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_gradient_vs_distance(results: "MemoryResults", path: Path) -> None:
    """Mean ||dL/dx_t|| of the trained models against the distance T-1-t from the end, log scale."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    length = max(results.config.lengths)
    for cell, norms in results.gradients.items():
        distance = list(range(len(norms) - 1, -1, -1))
        ax.plot(distance, [max(v, 1e-30) for v in norms], label=cell.upper(), color=COLOURS.get(cell), lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the end of the sequence (steps)")
    ax.set_ylabel("mean ||dLoss / d input_t||")
    ax.set_title(f"gradient reaching each input, length {length}, trained models", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
