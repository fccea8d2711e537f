"""Per-character features and the correlation maths on hand-made examples."""

import numpy as np
import pytest

from lstmkit.inspect import Trace, correlation, text_features, top_units


def test_features_of_a_hand_made_text():
    text = 'ab\ncd. "Ef" (g)\nGOOD bad'
    f = text_features(list(text))
    #              a  b \n  c  d  .     "  E  f  "     (  g  )  \n G  O  O  D     b  a  d
    line_pos = [0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2, 3, 4, 5, 6, 7]
    np.testing.assert_array_equal(f["line_position"], line_pos)
    np.testing.assert_array_equal(f["word_position"][:9], [1, 2, 0, 1, 2, 3, 0, 1, 2])
    np.testing.assert_array_equal(np.flatnonzero(f["inside_quotes"]), [7, 8, 9, 10])
    np.testing.assert_array_equal(np.flatnonzero(f["inside_brackets"]), [12, 13, 14])
    # after the full stop: the space, the quote and the first letter E
    np.testing.assert_array_equal(np.flatnonzero(f["after_full_stop"]), [6, 7, 8])
    np.testing.assert_array_equal(np.flatnonzero(f["uppercase_word"]), [16, 17, 18, 19])
    np.testing.assert_array_equal(f["sentiment_word"][16:], [1, 1, 1, 1, 0, -1, -1, -1])


def test_correlation_of_hand_made_units():
    feature = np.array([1.0, 2.0, 3.0, 4.0])
    values = np.stack([feature, -2 * feature + 3, np.full(4, 5.0), np.array([1.0, 3.0, 2.0, 4.0])], axis=-1)  # (T, H)
    np.testing.assert_allclose(correlation(values, feature), [1.0, -1.0, 0.0, 0.8])
    # leading dimensions are kept: (L, D, T, H) -> (L, D, H)
    stacked = np.stack([values, values[:, ::-1]])[:, None]             # (2, 1, 4, 4)
    np.testing.assert_allclose(correlation(stacked, feature), [[[1, -1, 0, 0.8]], [[0.8, 0, -1, 1]]])
    assert np.all(correlation(values, np.zeros(4)) == 0)                # a constant feature relates to nothing


def test_top_units_finds_planted_units_and_skips_constant_features():
    rng = np.random.default_rng(0)
    steps = 200
    feature = rng.normal(size=steps)
    cell = rng.normal(size=(2, 1, steps, 8))                            # (L, D, T, H)
    cell[1, 0, :, 5] = -feature + 0.1 * rng.normal(size=steps)          # strong, negative
    cell[0, 0, :, 2] = feature + 1.0 * rng.normal(size=steps)           # weaker, positive
    tr = Trace(list("x" * steps), {"c": cell})
    rows = top_units(tr, {"planted": feature, "flat": np.ones(steps)}, k=2)
    assert [r["feature"] for r in rows] == ["planted", "planted"]
    assert [(r["rank"], r["layer"], r["unit"]) for r in rows] == [(1, 1, 5), (2, 0, 2)]
    assert rows[0]["r"] < -0.99 and 0.6 < rows[1]["r"] < 0.8
    assert rows[0]["r2"] == pytest.approx(rows[0]["r"] ** 2, abs=1e-3)
