"""The report: automatic unit choice, HTML contents, files written atomically, and every user error."""

import re

import pytest
from inspect_helpers import TEXT, tiny_generator

from lstmkit import LstmkitError
from lstmkit.inspect import build_report, inspect_run, write_report
from lstmkit.inspect.html import colour, coloured_text


def test_colours():
    assert colour(0.0, "c") == "rgb(255,255,255)"
    assert colour(10.0, "c") == "rgb(255,65,65)" and colour(-1.0, "h") == "rgb(65,65,255)"
    assert colour(1.0, "f") == "rgb(80,185,80)" and colour(0.0, "i") == "rgb(255,255,255)"
    html = coloured_text(["<", "\n"], [0.0, 1.0], "o")
    assert "&lt;</span>" in html and "\u21b5\n</span>" in html and 'title="1.000"' in html
    # signed quantities are scaled by their largest magnitude: -4 shows as full blue, 2 as half red
    html = coloured_text(["a", "b"], [-4.0, 2.0], "c")
    assert colour(-1.0, "c") in html and colour(0.5, "c") in html and "largest |value|: 4" in html
    assert "</span> <span" in coloured_text(["good", "film"], [0.1, 0.2], "f")  # words keep their spaces


def test_report_picks_the_best_line_position_unit_and_renders_everything(tmp_path):
    report = build_report(tiny_generator(), TEXT, k=3)
    best = report.best("line_position")
    assert (report.unit, report.layers) == (best["unit"], [best["layer"]])
    assert "best tracks the position in the line" in report.unit_reason
    assert sorted(report.absent) == []  # the text has quotes, brackets, capitals, sentiment words
    assert len([r for r in report.top if r["feature"] == "line_position"]) == 3
    paths = write_report(report, tmp_path / "page.html")
    assert [p.name for p in paths] == ["page.html", "page-features.png", "page-unit.png", "page-saturation.png"]
    page = (tmp_path / "page.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert f"line_position: best layer {best['layer']} unit {best['unit']}, r = {best['r']:+.3f}" in page
    assert page.count('<div class="text">') == report.trace.shape["direction"] * 4 + len(report.shown_features)
    assert page.count("<span style=\"background:rgb(") >= len(TEXT) * 4
    assert page.count("data:image/png;base64,") == 3 and "http" not in page.replace("https://", "")
    assert "Gate saturation" in page and "forget gate" in page
    assert re.search(r"<td>f</td><td>[0-9.]+</td><td>[0-9.]+</td>", page)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths[1:])


def test_chosen_unit_in_every_layer(tmp_path):
    report = build_report(tiny_generator(), TEXT, unit=4, figures=False)
    assert (report.unit, report.layers) == (4, [0, 1])
    assert report.unit_reason == "unit 4 as asked, in every layer"
    page_path = write_report(report, tmp_path / "u.html")[0]
    page = page_path.read_text()
    assert "layer 1, unit 4: forget gate" in page and "layer 0, unit 4: cell state" in page
    only = build_report(tiny_generator(), "ab ab\n", unit=1, layer=1, figures=False)
    assert only.layers == [1]


def test_unit_without_line_breaks_falls_back_to_the_most_varying_unit():
    report = build_report(tiny_generator(), "\n\n\n", figures=False)  # every line empty
    assert report.unit_reason.startswith("chosen automatically: the unit whose cell state varies most")
    assert "line_position" in report.absent


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layer": 2}, "layer must be between 0 and 1 (the model has 2 layers), got 2"),
        ({"unit": 6}, "unit must be between 0 and 5 (each layer has 6 units), got 6"),
        ({"quantity": "x"}, "quantity must be one of c, h, i, f, o, g, got 'x'"),
        ({"k": 0}, "the number of units listed per feature must be at least 1, got 0"),
    ],
)
def test_report_errors(options, message):
    with pytest.raises(LstmkitError) as err:
        build_report(tiny_generator(), TEXT, figures=False, **options)
    assert str(err.value) == message


def test_output_errors(tmp_path):
    with pytest.raises(LstmkitError) as err:
        inspect_run(tiny_generator(), TEXT, tmp_path / "page.txt")
    assert str(err.value) == f"the page must be an .html file, got {tmp_path / 'page.txt'}"
    with pytest.raises(LstmkitError) as err:
        inspect_run(tiny_generator(), TEXT, tmp_path / "no" / "page.html")
    assert str(err.value) == f"folder not found for the page: {tmp_path / 'no'}"
    out = tmp_path / "page.html"
    inspect_run(tiny_generator(), TEXT, out, figures=False)
    with pytest.raises(LstmkitError) as err:
        inspect_run(tiny_generator(), TEXT, out, figures=False)
    assert str(err.value) == f"{out} already exist(s); pass --overwrite to replace"
    inspect_run(tiny_generator(), "ado\n", out, figures=False, overwrite=True)
    assert "read over 4 tokens" in out.read_text() and not list(tmp_path.glob(".*tmp*"))
