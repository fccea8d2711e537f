"""Column scalers fitted on the training rows only, stored as JSON. They know arrays, not splits: the caller
passes the training rows to ``fit``, which is what keeps validation and test rows out of the statistics."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LstmkitError

SCALERS = ("standard", "minmax", "none")


@dataclass
class ColumnScaler:
    """Per-column affine map ``z = (x - shift_) / scale_``.

    ``standard`` uses the mean and standard deviation of the fitted rows (the ETT convention), ``minmax``
    maps them onto [0, 1], ``none`` leaves values as they are. A constant column gets scale 1.
    """

    method: str
    columns: list[str]
    shift_: np.ndarray   # (I,)
    scale_: np.ndarray   # (I,)

    @classmethod
    def fit(cls, method: str, columns: list[str], rows: np.ndarray) -> "ColumnScaler":
        """Fits on ``rows`` (T, I), which must be the training rows and nothing else."""
        if method not in SCALERS:
            raise LstmkitError(f"scaler must be one of {', '.join(SCALERS)}, got {method!r}")
        rows = np.asarray(rows, dtype=np.float64)                # (T, I)
        if method == "standard":
            shift, scale = rows.mean(axis=0), rows.std(axis=0)
        elif method == "minmax":
            shift, scale = rows.min(axis=0), rows.max(axis=0) - rows.min(axis=0)
        else:
            shift, scale = np.zeros(rows.shape[1]), np.ones(rows.shape[1])
        scale = np.where(scale > 0, scale, 1.0)
        return cls(method, list(columns), shift, scale)

    def transform(self, x: np.ndarray, index: list[int] | None = None) -> np.ndarray:
        """x (..., I) or, with ``index``, (..., len(index)) holding only those columns -> scaled, float32."""
        shift, scale = (self.shift_, self.scale_) if index is None else (self.shift_[index], self.scale_[index])
        return ((np.asarray(x, dtype=np.float64) - shift) / scale).astype(np.float32)

    def inverse(self, z: np.ndarray, index: list[int] | None = None) -> np.ndarray:
        """The inverse of ``transform``, in float64."""
        shift, scale = (self.shift_, self.scale_) if index is None else (self.shift_[index], self.scale_[index])
        return np.asarray(z, dtype=np.float64) * scale + shift

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "columns": self.columns,
            "shift": self.shift_.tolist(),
            "scale": self.scale_.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ColumnScaler":
        return cls(data["method"], list(data["columns"]), np.array(data["shift"]), np.array(data["scale"]))
