"""The self-contained HTML page of an inspection: coloured text, tables of units and figures inlined as
base64 PNGs. Rendering only; the numbers come from report.py."""

import base64
import html
from typing import TYPE_CHECKING

import numpy as np

from .trace import QUANTITIES

if TYPE_CHECKING:
    from .report import Report

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin-bottom: 0.3em; }
.text { font-family: ui-monospace, monospace; font-size: 13px; line-height: 1.55; white-space: pre-wrap;
        border: 1px solid #ddd; padding: 6px; max-height: 24em; overflow-y: auto; }
.text span { border-radius: 2px; }
table { border-collapse: collapse; font-size: 13px; margin: 0.4em 0 1em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; } th { background: #f3f3f3; }
.legend span { display: inline-block; width: 2.2em; text-align: center; font-size: 11px; }
.note { color: #555; font-size: 13px; } img { max-width: 100%; }
.features { display: flex; flex-wrap: wrap; gap: 0 2em; } .features h3 { font-size: 0.9em; }
"""


SIGNED = ("c", "h", "g")  # shown blue (negative) - white - red (positive); the gates white - green


def colour(value: float, quantity: str) -> str:
    """Background colour of a token. Signed quantities (cell state, hidden state, candidate) take a value in
    [-1, 1] and run blue, white, red; gates take [0, 1] and run white to green. Colours stay light enough for
    the text to be read."""
    if quantity in SIGNED:
        v = min(1.0, max(-1.0, float(value)))
        fade = round(255 - 190 * abs(v))
        return f"rgb(255,{fade},{fade})" if v >= 0 else f"rgb({fade},{fade},255)"
    a = min(1.0, max(0.0, float(value)))
    return f"rgb({round(255 - 175 * a)},{round(255 - 70 * a)},{round(255 - 175 * a)})"


def coloured_text(tokens: list[str], values: np.ndarray, quantity: str) -> str:
    """The tokens as spans coloured by ``values`` (T,); the raw value shows on hover; line breaks stay visible.

    Signed quantities are divided by their largest magnitude on the text, so that a unit whose cell state
    counts far beyond 1 still shows its variation.
    """
    values = np.asarray(values, dtype=float)
    scale = float(np.abs(values).max()) if quantity in SIGNED else 1.0
    scaled = values / scale if scale > 0 else values
    parts = []
    for tok, value, shade in zip(tokens, values, scaled, strict=True):
        shown = "\u21b5\n" if tok == "\n" else tok
        parts.append(f'<span style="background:{colour(shade, quantity)}" title="{value:.3f}">'
                     f"{html.escape(shown)}</span>")
    note = f'<div class="note">largest |value|: {scale:.3g}</div>' if quantity in SIGNED else ""
    words = any(len(tok) > 1 for tok in tokens)  # word tokens are shown with spaces between them
    return '<div class="text">' + (" " if words else "").join(parts) + "</div>" + note


def _legend(quantity: str) -> str:
    stops = [-1.0, -0.5, 0.0, 0.5, 1.0] if quantity in SIGNED else [0.0, 0.25, 0.5, 0.75, 1.0]
    cells = "".join(f'<span style="background:{colour(v, quantity)}">{v:g}</span>' for v in stops)
    label = f"{QUANTITIES[quantity]} / its largest |value|" if quantity in SIGNED else QUANTITIES[quantity]
    return f'<div class="legend note">{html.escape(label)}: {cells}</div>'


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _layer_name(layer: int, direction: int, directions: int) -> str:
    return f"layer {layer}" + ((" reverse" if direction else " forward") if directions > 1 else "")


def render(report: "Report") -> str:
    """The whole page as a string."""
    trace, s = report.trace, report.trace.shape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>lstmkit inspect: {html.escape(report.source)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Inside the LSTM of {html.escape(report.source)}</h1>",
        f"<p class='note'>{s['layer']} layer(s) x {s['direction']} direction(s) x {s['unit']} units, "
        f"read over {s['time']} tokens. Hover over a token to see its value.</p>",
        "<h2>Units that track simple features</h2>",
        f"<p class='note'>Pearson correlation r of each unit's {QUANTITIES[report.quantity]} with each feature "
        f"over the text; the {report.k} strongest (by |r|) per feature. Features constant on this text "
        f"({html.escape(', '.join(report.absent) or 'none')}) are left out.</p>",
    ]
    out.append('<div class="features">')
    for name in dict.fromkeys(r["feature"] for r in report.top):
        rows = [r for r in report.top if r["feature"] == name]
        best = rows[0]
        out.append(
            f"<div><h3>{html.escape(name)}: best layer {best['layer']} unit {best['unit']}, r = {best['r']:+.3f}</h3>"
        )
        out.append(_table(rows, ["rank", "layer", "direction", "unit", "r", "r2"]) + "</div>")
    out.append("</div>")
    out.append("<h3>The best unit of each feature, coloured by its cell state</h3>")
    for name in report.shown_features:
        best = next(r for r in report.top if r["feature"] == name and r["rank"] == 1)
        values = trace.unit(report.quantity, best["layer"], best["unit"], best["direction"])
        out.append(f"<p class='note'>{html.escape(name)}: layer {best['layer']} unit {best['unit']} "
                   f"(r = {best['r']:+.3f})</p>")
        out.append(coloured_text(trace.tokens, values, report.quantity))
    out.append(_legend(report.quantity))
    if "features" in report.figures:
        out.append(_img(report.figures["features"], "features and their best units"))
    out.append(f"<h2>Unit {report.unit}: cell state and gates</h2>")
    out.append(f"<p class='note'>{html.escape(report.unit_reason)}</p>")
    for layer in report.layers:
        for direction in range(s["direction"]):
            name = _layer_name(layer, direction, s["direction"])
            for quantity in ("c", "f", "i", "o"):
                out.append(f"<h3>{name}, unit {report.unit}: {QUANTITIES[quantity]}</h3>")
                out.append(coloured_text(trace.tokens, trace.unit(quantity, layer, report.unit, direction), quantity))
    out.append(_legend("c") + _legend("f"))
    if "unit" in report.figures:
        out.append(_img(report.figures["unit"], f"unit {report.unit} over time"))
    out.append("<h2>Gate saturation</h2>")
    out.append("<p class='note'>Share of (step, unit) activations below 0.1 (closed) and above 0.9 (open) per "
               "gate, as in Karpathy, Johnson &amp; Fei-Fei (2015); units counted as mostly closed or open spend "
               "over half the steps there.</p>")
    out.append(_table(report.saturation.summary(), ["layer", "direction", "gate", "below_0.1", "above_0.9",
                                                    "units_mostly_closed", "units_mostly_open"]))
    if "saturation" in report.figures:
        out.append(_img(report.figures["saturation"], "gate saturation per unit"))
    out.append("</body></html>\n")
    return "\n".join(out)
