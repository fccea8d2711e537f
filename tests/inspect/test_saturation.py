"""Gate saturation fractions on gates set by hand."""

import numpy as np

from lstmkit.inspect import Trace, saturation


def test_saturation_fractions_and_summary():
    steps = 10
    gates = {k: np.full((1, 1, steps, 2), 0.5) for k in "ifo"}           # (L, D, T, H)
    gates["f"][0, 0, :, 0] = 0.95                                        # unit 0's forget gate always open
    gates["f"][0, 0, :3, 1] = 0.05                                       # unit 1's closed 3 steps of 10
    gates["i"][0, 0, :6, 1] = 0.99                                       # unit 1's input gate open 6 of 10
    sat = saturation(Trace(["a"] * steps, {**gates, "c": np.zeros((1, 1, steps, 2))}))
    assert sat.low.shape == (1, 1, 3, 2) and sat.gates == ("i", "f", "o")
    np.testing.assert_allclose(sat.high[0, 0], [[0, 0.6], [1.0, 0], [0, 0]])
    np.testing.assert_allclose(sat.low[0, 0], [[0, 0], [0, 0.3], [0, 0]])
    rows = {r["gate"]: r for r in sat.summary()}
    assert rows["f"] == {"layer": 0, "direction": 0, "gate": "f", "below_0.1": 0.15, "above_0.9": 0.5,
                         "units_mostly_closed": 0, "units_mostly_open": 1}
    assert rows["i"]["units_mostly_open"] == 1 and rows["o"]["above_0.9"] == 0
