"""`lstmkit inspect` end to end on a tiny model trained on Macbeth, and every error a user can meet."""

import pytest

from lstmkit import textgen
from lstmkit.cli.main import main

TINY = dict(seq_len=20, embed_dim=8, hidden_size=16, num_layers=2, batch_size=8, max_steps=2, epochs=1, quiet=True)


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def macbeth_run(macbeth_excerpt, tmp_path):
    out = tmp_path / "macbeth"
    textgen.train(macbeth_excerpt, out=out, **TINY)
    return out


@pytest.mark.data
def test_inspect_writes_the_page(macbeth_run, macbeth_excerpt, tmp_path, capsys):
    excerpt = tmp_path / "excerpt.txt"
    excerpt.write_text(macbeth_excerpt.read_text()[1000:1600])
    page = tmp_path / "view.html"
    code, out, err = _run(capsys, "inspect", macbeth_run, "--text-file", excerpt, "--out", page, "--top", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("line_position    best: layer ") and " r = " in lines[0]
    assert lines[-1] == f"wrote {page}"
    html = page.read_text()
    assert "line_position: best layer" in html and "Gate saturation" in html
    assert all((tmp_path / f"view-{n}.png").is_file() for n in ("features", "unit", "saturation"))
    code, out, _ = _run(capsys, "inspect", macbeth_run, "--text", "Macb. So foule and faire a day\n", "--out", page,
                        "--unit", "3", "--layer", "1", "--quantity", "h", "--overwrite")
    assert code == 0 and "layer 1, unit 3: output gate" in page.read_text()


@pytest.mark.data
def test_inspect_errors(macbeth_run, tmp_path, capsys):
    page = tmp_path / "p.html"
    cases = [
        (["inspect", macbeth_run], "error: give the text to read with --text TEXT or --text-file FILE"),
        (["inspect", macbeth_run, "--text-file", tmp_path / "none.txt"],
         f"error: text file not found: {tmp_path / 'none.txt'}"),
        (["inspect", tmp_path / "none", "--text", "abc", "--out", page],
         f"error: run folder not found: {tmp_path / 'none'}"),
        (["inspect", macbeth_run, "--text", "", "--out", page], "error: the text to inspect is empty"),
        (["inspect", macbeth_run, "--text", "abc", "--out", page, "--unit", "99"],
         "error: unit must be between 0 and 15 (each layer has 16 units), got 99"),
        (["inspect", macbeth_run, "--text", "abc", "--out", page, "--layer", "2"],
         "error: layer must be between 0 and 1 (the model has 2 layers), got 2"),
        (["inspect", macbeth_run, "--text", "abc", "--out", tmp_path / "p.png"],
         f"error: the page must be an .html file, got {tmp_path / 'p.png'}"),
    ]
    for argv, message in cases:
        code, _, err = _run(capsys, *argv)
        assert (code, err.strip()) == (2, message)
    binary = tmp_path / "latin1.txt"
    binary.write_bytes(b"caf\xe9")
    code, _, err = _run(capsys, "inspect", macbeth_run, "--text-file", binary, "--out", page)
    assert (code, err.strip()) == (2, f"error: {binary} is not UTF-8 text")
    assert _run(capsys, "inspect", macbeth_run, "--text", "abc", "--out", page)[0] == 0
    code, _, err = _run(capsys, "inspect", macbeth_run, "--text", "abc", "--out", page)
    assert (code, err.strip()) == (
        2, f"error: {page}, {tmp_path / 'p-features.png'}, {tmp_path / 'p-unit.png'}, "
        f"{tmp_path / 'p-saturation.png'} already exist(s); pass --overwrite to replace"
    )


@pytest.mark.data
def test_inspect_refuses_gru_runs(macbeth_excerpt, tmp_path, capsys):
    run = tmp_path / "gru"
    textgen.train(macbeth_excerpt, out=run, cell="gru", **TINY)
    code, _, err = _run(capsys, "inspect", run, "--text", "abc", "--out", tmp_path / "p.html")
    assert (code, err.strip()) == (
        2, f"error: inspect shows LSTM gates and cell states, but the run in {run} uses a GRU; "
        "train it with --cell lstm"
    )
