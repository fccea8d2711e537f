"""The memory tasks' generators: markers, targets, the 0.167 baseline, the copy layout, determinism."""

import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.experiment import COPY_SPAN, COPY_SYMBOLS, FreshBatches, adding_problem, copy_task, make_batch


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_adding_problem_marks_one_step_in_each_half_and_targets_their_sum():
    batch = adding_problem(256, 30, _gen())
    assert batch.inputs.shape == (256, 30, 2) and batch.targets.shape == (256,)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    torch.testing.assert_close(batch.targets, (values * markers).sum(1))


def test_adding_problem_baseline_of_answering_one_has_mse_one_sixth():
    batch = adding_problem(40_000, 10, _gen(3))
    mse = float(((batch.targets - 1.0) ** 2).mean())
    assert abs(mse - 1 / 6) < 0.004  # Var(U1 + U2) = 2/12; the standard error at this size is about 0.001
    # the marked values are uniform and independent: the sum has mean 1
    assert abs(float(batch.targets.mean()) - 1.0) < 0.01


def test_adding_problem_is_reproducible_and_covers_both_halves():
    a, b = adding_problem(64, 20, _gen(7)), adding_problem(64, 20, _gen(7))
    torch.testing.assert_close(a.inputs, b.inputs)
    first = a.inputs[..., 1][:, :10].argmax(1)
    assert first.min() == 0 or first.max() == 9  # positions are spread over the half, not fixed
    assert len(first.unique()) > 3


def test_copy_task_layout():
    batch = copy_task(32, 7, _gen())
    steps = 7 + 2 * COPY_SPAN
    assert batch.inputs.shape == (32, steps) and batch.targets.shape == (32, COPY_SPAN)
    assert batch.inputs.dtype == torch.long
    torch.testing.assert_close(batch.inputs[:, :COPY_SPAN], batch.targets)
    assert ((batch.targets >= 1) & (batch.targets <= COPY_SYMBOLS)).all()
    delimiter = COPY_SPAN + 7 - 1
    assert (batch.inputs[:, delimiter] == COPY_SYMBOLS + 1).all()
    rest = torch.cat([batch.inputs[:, COPY_SPAN:delimiter], batch.inputs[:, delimiter + 1:]], dim=1)
    assert (rest == 0).all()


def test_generator_errors():
    with pytest.raises(LstmkitError) as err:
        adding_problem(4, 1, _gen())
    assert str(err.value) == "the adding problem needs sequences of at least 2 steps, got 1"
    with pytest.raises(LstmkitError) as err:
        copy_task(4, 0, _gen())
    assert str(err.value) == "the copy task needs a delay of at least 1 step, got 0"
    with pytest.raises(LstmkitError) as err:
        make_batch("sort", 4, 10, _gen())
    assert str(err.value) == "task must be one of adding, copy, got 'sort'"


def test_fresh_batches_draw_new_data_each_batch_from_the_epoch_generator():
    source = FreshBatches("adding", 12, 8, 3)
    first = list(source.epoch(_gen(1)))
    assert len(source) == 3 and len(first) == 3
    assert all(b.inputs.shape == (8, 12, 2) for b in first)
    assert not torch.equal(first[0].inputs, first[1].inputs)
    again = list(source.epoch(_gen(1)))
    torch.testing.assert_close(first[2].inputs, again[2].inputs)
