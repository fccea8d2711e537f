"""How often each gate is saturated: the fraction of steps with activation below 0.1 (left-saturated, "closed")
or above 0.9 (right-saturated, "open"), as in Karpathy, Johnson & Fei-Fei (2015), "Visualizing and
Understanding Recurrent Networks", section 4.2."""

from dataclasses import dataclass

import numpy as np

from .trace import Trace

GATES = ("i", "f", "o")
LOW, HIGH = 0.1, 0.9


@dataclass
class Saturation:
    """Per-unit saturation fractions of the input, forget and output gates.

    Attributes:
        low: (L, D, 3, H), the share of steps where gate (i, f, o) of a unit is below ``LOW``.
        high: (L, D, 3, H), the share of steps above ``HIGH``.
        gates: the gate names along the third dimension.
    """

    low: np.ndarray
    high: np.ndarray
    gates: tuple[str, ...] = GATES

    def summary(self) -> list[dict]:
        """One row per layer, direction and gate: mean fractions over units and the counts of units that are
        mostly (over half the time) left- or right-saturated."""
        rows = []
        layers, directions = self.low.shape[:2]
        for layer in range(layers):
            for direction in range(directions):
                for k, gate in enumerate(self.gates):
                    low, high = self.low[layer, direction, k], self.high[layer, direction, k]  # (H,)
                    rows.append({
                        "layer": layer, "direction": direction, "gate": gate,
                        "below_0.1": round(float(low.mean()), 4), "above_0.9": round(float(high.mean()), 4),
                        "units_mostly_closed": int((low > 0.5).sum()), "units_mostly_open": int((high > 0.5).sum()),
                    })
        return rows


def saturation(trace: Trace, low: float = LOW, high: float = HIGH) -> Saturation:
    """Fractions of time steps each unit's gates spend below ``low`` and above ``high``."""
    gates = np.stack([trace[g] for g in GATES], axis=2)                 # (L, D, 3, T, H)
    return Saturation((gates < low).mean(axis=3), (gates > high).mean(axis=3))  # (L, D, 3, H) each
