"""Seeing inside a trained LSTM: gate and cell-state traces on a text, the units that track simple features,
gate saturation, and a self-contained HTML page.

Example:
    >>> from lstmkit import inspect
    >>> t = inspect.trace("runs/macbeth", "MACBETH. So foule and faire a day I have not seene.")
    >>> t["c"].shape                     # (layer, direction, time, unit)
    >>> inspect.inspect_run("runs/macbeth", text, "macbeth.html")
"""

from .features import FEATURES, correlation, text_features, top_units
from .report import Report, build_report, inspect_run, write_report
from .saturation import Saturation, saturation
from .trace import QUANTITIES, Subject, Trace, load_subject, trace

__all__ = [
    "FEATURES",
    "QUANTITIES",
    "Report",
    "Saturation",
    "Subject",
    "Trace",
    "build_report",
    "correlation",
    "inspect_run",
    "load_subject",
    "saturation",
    "text_features",
    "top_units",
    "trace",
    "write_report",
]
