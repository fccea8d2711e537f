import logging

import pytest
import torch

from lstmkit import LSTM, BackendUnsupported, LstmkitError
from lstmkit.backends import _fallbacks_logged, select

CPU = torch.device("cpu")


def test_auto_picks_torch_when_it_can():
    assert select("auto", LSTM(3, 4).spec, device=CPU, training=True).NAME == "torch"


def test_auto_falls_back_to_fused_and_logs_once(caplog):
    _fallbacks_logged.clear()
    spec = LSTM(3, 4, recurrent_dropout=0.2).spec
    with caplog.at_level(logging.INFO, logger="lstmkit"):
        for _ in range(3):
            assert select("auto", spec, device=CPU, training=True).NAME == "fused"
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["backend 'auto': torch.nn kernels have no recurrent dropout; falling back from 'torch'"]


def test_auto_falls_back_to_reference_where_nothing_else_runs(caplog):
    _fallbacks_logged.clear()
    spec = LSTM(3, 4, recurrent_dropout=0.2, proj_size=2).spec
    with caplog.at_level(logging.INFO, logger="lstmkit"):
        assert select("auto", spec, device=CPU, training=True).NAME == "reference"
    assert [r.getMessage() for r in caplog.records] == [
        "backend 'auto': torch.nn kernels have no recurrent dropout; falling back from 'torch'",
        "backend 'auto': the fused backend has no projection (proj_size); falling back from 'fused'",
        "backend 'auto': the triton backend has no projection (proj_size); falling back from 'triton'",
    ]


def test_auto_uses_torch_for_recurrent_dropout_in_eval_mode():
    spec = LSTM(3, 4, recurrent_dropout=0.2).spec
    assert select("auto", spec, device=CPU, training=False).NAME == "torch"


def test_named_backend_that_cannot_run_raises():
    module = LSTM(3, 4, recurrent_dropout=0.2, backend="torch")
    with pytest.raises(BackendUnsupported) as err:
        module(torch.randn(2, 5, 3))
    assert str(err.value) == "backend 'torch' cannot run this configuration: torch.nn kernels have no recurrent dropout"


def test_unknown_backend_is_refused_at_construction():
    with pytest.raises(LstmkitError) as err:
        LSTM(3, 4, backend="cudnn-magic")
    assert str(err.value) == "unknown backend 'cudnn-magic'; choose one of: auto, torch, fused, triton, reference"
