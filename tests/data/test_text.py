import pytest
import torch

from lstmkit.data import CharVocab, LMWindows, lm_streams, read_text, split_tail
from lstmkit.errors import LstmkitError


def test_vocab_fits_training_text_and_flags_unknown_characters():
    vocab = CharVocab.fit("banana\n")
    assert vocab.chars == "\nabn" and len(vocab) == 5 and vocab.unk_id == 4
    assert vocab.encode("nab!").tolist() == [3, 1, 2, 4]
    assert vocab.unknown("nab!?!") == ["!", "?"]
    assert vocab.decode([3, 1]) == "na"
    assert CharVocab.from_json(vocab.to_json()) == vocab
    lower = CharVocab.fit("AbA", lowercase=True)
    assert lower.chars == "ab" and lower.encode("BA").tolist() == [1, 0]


def test_split_tail_is_contiguous():
    head, tail = split_tail("abcdefghij", 0.2)
    assert (head, tail) == ("abcdefgh", "ij")


def test_windows_are_next_character_pairs_and_cover_the_text():
    ids = torch.arange(103)
    windows = LMWindows(ids, seq_len=10, batch_size=4)
    assert windows.num_windows == 10 and len(windows) == 3
    batches = list(windows.epoch(torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    starts = sorted(int(b.inputs[k, 0]) for b in batches for k in range(len(b)))
    assert starts == [starts[0] + 10 * k for k in range(10)] and 0 <= starts[0] <= 2
    for b in batches:
        assert torch.equal(b.targets, b.inputs + 1)


def test_windows_order_depends_only_on_the_generator():
    windows = LMWindows(torch.arange(500), seq_len=7, batch_size=5)
    first = [b.inputs for b in windows.epoch(torch.Generator().manual_seed(3))]
    again = [b.inputs for b in windows.epoch(torch.Generator().manual_seed(3))]
    other = [b.inputs for b in windows.epoch(torch.Generator().manual_seed(4))]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_lm_streams_are_contiguous_columns():
    batches = list(lm_streams(torch.arange(13), num_streams=2, seq_len=4))
    assert [b.inputs.tolist() for b in batches] == [[[0, 1, 2, 3], [6, 7, 8, 9]], [[4, 5], [10, 11]]]
    assert [b.targets.tolist() for b in batches] == [[[1, 2, 3, 4], [7, 8, 9, 10]], [[5, 6], [11, 12]]]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "text file not found: {path}"),
        (b"", "text file is empty: {path}"),
        (b"  \n\n", "text file is empty: {path}"),
        (b"abc\x00\x01def", "{path} looks binary (it contains NUL bytes); expected a UTF-8 text file"),
        (b"caf\xe9 au lait", "{path} is not UTF-8 text (byte 0xe9 at offset 3); convert it to UTF-8"),
    ],
)
def test_read_text_errors(tmp_path, content, message):
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LstmkitError) as err:
        read_text(path)
    assert str(err.value) == message.format(path=path)


def test_read_text_normalises_bom_and_crlf(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffone\r\ntwo\r\n".encode())
    assert read_text(path) == "one\ntwo\n"
