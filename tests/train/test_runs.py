import json

import pytest

from lstmkit.errors import LstmkitError
from lstmkit.train import check_new_output, read_run_config, write_folder


def test_write_folder_replaces_atomically(tmp_path):
    out = tmp_path / "run"
    write_folder(out, {"a.json": b"1", "sub/b.bin": lambda p: p.write_bytes(b"xyz")})
    assert (out / "a.json").read_bytes() == b"1" and (out / "sub" / "b.bin").read_bytes() == b"xyz"
    write_folder(out, {"c.json": b"2"})
    assert sorted(p.name for p in out.iterdir()) == ["c.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary or old folders left


def test_failed_write_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "run"

    def boom(path):
        path.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_folder(out, {"a.json": b"1", "model.safetensors": boom})
    assert list(tmp_path.iterdir()) == []
    write_folder(out, {"a.json": b"1"})
    with pytest.raises(RuntimeError):
        write_folder(out, {"a.json": b"2", "model.safetensors": boom})
    assert (out / "a.json").read_bytes() == b"1"  # the previous complete run is untouched


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    with pytest.raises(LstmkitError) as err:
        check_new_output(tmp_path, overwrite=False)
    assert str(err.value) == (
        f"output folder {tmp_path} already exists; pass --overwrite to replace it or --resume to continue it"
    )
    check_new_output(tmp_path, overwrite=True)
    check_new_output(tmp_path / "new", overwrite=False)


def test_run_config_errors(tmp_path):
    with pytest.raises(LstmkitError) as err:
        read_run_config(tmp_path / "missing", "textgen")
    assert str(err.value) == f"run folder not found: {tmp_path / 'missing'}"
    with pytest.raises(LstmkitError) as err:
        read_run_config(tmp_path, "textgen")
    assert str(err.value) == f"{tmp_path} is not an lstmkit run folder (no config.json)"
    (tmp_path / "config.json").write_text(json.dumps({"task": "forecast"}))
    with pytest.raises(LstmkitError) as err:
        read_run_config(tmp_path, "textgen")
    assert str(err.value) == f"{tmp_path} is a forecast run, not a textgen run"
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(LstmkitError) as err:
        read_run_config(tmp_path, "textgen")
    assert str(err.value).startswith(f"cannot read {tmp_path / 'config.json'}: not valid JSON")
