"""An inspection from end to end: trace a run on a text, find the units that track each feature, measure
gate saturation, draw the figures and write the HTML page (and its PNGs beside it) atomically."""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LstmkitError
from .features import text_features, top_units
from .html import render
from .saturation import Saturation, saturation
from .trace import QUANTITIES, Trace, load_subject, trace

MAX_SHOWN_FEATURES = 4  # coloured text views of the best units, strongest features first


@dataclass
class Report:
    """Everything the page shows.

    Attributes:
        source: what was inspected (the run folder).
        trace: the activations.
        quantity: the Trace quantity correlated with the features ("c", the cell state, by default).
        k: units listed per feature.
        top: rows {feature, rank, layer, direction, unit, r, r2} (see features.top_units).
        absent: features constant on the text, hence without units.
        unit, layers: the unit shown in detail and the layers it is shown for.
        unit_reason: why this unit (chosen by the user, or the best line-position unit).
        saturation: gate saturation fractions.
        figures: name ("features", "unit", "saturation") -> PNG bytes.
    """

    source: str
    trace: Trace
    quantity: str
    k: int
    top: list[dict]
    absent: list[str]
    unit: int
    layers: list[int]
    unit_reason: str
    saturation: Saturation
    figures: dict[str, bytes] = field(default_factory=dict)

    @property
    def shown_features(self) -> list[str]:
        """Features whose best unit gets a coloured text view, by decreasing |r|."""
        best = sorted((r for r in self.top if r["rank"] == 1), key=lambda r: -abs(r["r"]))
        return [r["feature"] for r in best[:MAX_SHOWN_FEATURES]]

    def best(self, feature: str) -> dict | None:
        return next((r for r in self.top if r["feature"] == feature and r["rank"] == 1), None)


def _choose_unit(tr: Trace, top: list[dict], unit: int | None, layer: int | None) -> tuple[int, list[int], str]:
    s = tr.shape
    if layer is not None and not 0 <= layer < s["layer"]:
        raise LstmkitError(f"layer must be between 0 and {s['layer'] - 1} (the model has {s['layer']} layers), "
                           f"got {layer}")
    if unit is not None and not 0 <= unit < s["unit"]:
        raise LstmkitError(f"unit must be between 0 and {s['unit'] - 1} (each layer has {s['unit']} units), "
                           f"got {unit}")
    if unit is not None:
        layers = [layer] if layer is not None else list(range(s["layer"]))
        return unit, layers, f"unit {unit} as asked, in {'layer ' + str(layer) if layer is not None else 'every layer'}"
    rows = [r for r in top if r["feature"] == "line_position" and (layer is None or r["layer"] == layer)]
    if rows:
        best = max(rows, key=lambda r: abs(r["r"]))
        return best["unit"], [best["layer"]], (
            f"chosen automatically: the unit of layer {best['layer']} whose cell state best tracks the position "
            f"in the line (r = {best['r']:+.3f})"
        )
    layers = [layer] if layer is not None else list(range(s["layer"]))
    variance = tr["c"][layers].var(axis=2).max(axis=(0, 1))             # (H,)
    chosen = int(np.argmax(variance))
    return chosen, layers, f"chosen automatically: the unit whose cell state varies most (unit {chosen})"


def build_report(run: Any, text: str, unit: int | None = None, layer: int | None = None, quantity: str = "c",
                 k: int = 5, figures: bool = True) -> Report:
    """Traces ``run`` on ``text`` and gathers what the page shows (see Report).

    Args:
        run: a run folder or a loaded text generator.
        text: the text to read.
        unit, layer: the unit to show in detail, in one layer or (layer None) every layer; by default the
            unit that best tracks the position in the line.
        quantity: which Trace quantity to correlate with the features ("c" cell state, "h" hidden state ...).
        k: units listed per feature.
        figures: draw the PNG figures (turn off for speed in tests).
    """
    if quantity not in QUANTITIES:
        raise LstmkitError(f"quantity must be one of {', '.join(QUANTITIES)}, got {quantity!r}")
    if k < 1:
        raise LstmkitError(f"the number of units listed per feature must be at least 1, got {k}")
    subject = load_subject(run)
    tr = trace(subject, text)
    feats = text_features(tr.tokens)
    top = top_units(tr, feats, quantity, k)
    absent = [name for name, f in feats.items() if np.ptp(f) == 0]
    chosen, layers, reason = _choose_unit(tr, top, unit, layer)
    source = str(subject.path) if subject.path is not None else f"a {subject.task} model"
    report = Report(source, tr, quantity, k, top, absent, chosen, layers, reason, saturation(tr))
    if figures:
        from . import plots  # matplotlib (and its Agg backend) only when figures are drawn

        report.figures = {
            "features": plots.feature_figure(tr, feats, top, quantity),
            "unit": plots.unit_figure(tr, chosen, layers),
            "saturation": plots.saturation_figure(report.saturation),
        }
    return report


def _write_atomic(path: Path, content: bytes) -> None:
    """Writes to a temporary file beside ``path`` and renames it into place: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


FIGURES = ("features", "unit", "saturation")


def _targets(out: Path, figures: tuple[str, ...], overwrite: bool) -> dict[str, Path]:
    """The page and figure paths (name -> path, the page as "page"), refused if any exists unless ``overwrite``."""
    if out.suffix.lower() not in (".html", ".htm"):
        raise LstmkitError(f"the page must be an .html file, got {out}")
    if not out.parent.is_dir():
        raise LstmkitError(f"folder not found for the page: {out.parent}")
    targets = {"page": out, **{name: out.with_name(f"{out.stem}-{name}.png") for name in figures}}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise LstmkitError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")
    return targets


def write_report(report: Report, out: str | Path, overwrite: bool = False) -> list[Path]:
    """Writes the page to ``out`` (.html) and each figure beside it as ``<stem>-<figure>.png``.

    Returns:
        The paths written, the page first.
    """
    targets = _targets(Path(out), tuple(report.figures), overwrite)
    for name, png in report.figures.items():
        _write_atomic(targets[name], png)
    _write_atomic(targets["page"], render(report).encode())
    return list(targets.values())


def inspect_run(run: Any, text: str, out: str | Path, *, overwrite: bool = False, **options: Any) -> Report:
    """Builds the report (``options`` as build_report) and writes it (see write_report); the output paths are
    checked before any work is done."""
    _targets(Path(out), FIGURES if options.get("figures", True) else (), overwrite)
    report = build_report(run, text, **options)
    write_report(report, out, overwrite=overwrite)
    return report
