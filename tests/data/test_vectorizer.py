import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.data.vectorizer import OOV_ID, PAD_ID, TextVectorizer, pad, standardize, tokenize


def test_standardize_and_tokenize_strip_markup_case_and_punctuation():
    text = "A <b>GREAT</b> film!<br /><br />Don't miss it... 10/10, really."
    assert standardize(text) == "a  great  film!  don't miss it... 10/10, really."
    assert tokenize(text) == ["a", "great", "film", "don't", "miss", "it", "10", "10", "really"]
    assert tokenize("It\u2019s -- ok") == ["it's", "ok"]
    assert tokenize("!!! ...") == []


def test_fit_keeps_the_most_frequent_words_ties_alphabetical():
    vec = TextVectorizer.fit(["b a b c", "c b d", "a"], vocab_size=5, max_tokens=10)
    # counts: b 3, a 2, c 2, d 1 -> three words fit beside padding and out-of-vocabulary
    assert vec.words == ("b", "a", "c") and len(vec) == 5
    assert vec.encode_one("B d a") == [2, OOV_ID, 3]


def test_encode_pads_truncates_and_keeps_true_lengths():
    vec = TextVectorizer.fit(["one two three four five"], vocab_size=10, max_tokens=3)
    ids, lengths = vec.encode(["one two three four five", "two", "?!"])
    assert ids.shape == (3, 3)
    assert lengths.tolist() == [3, 1, 1]
    assert ids[0].tolist() == vec.encode_one("one two three")
    assert ids[1, 1:].tolist() == [PAD_ID, PAD_ID]
    assert ids[2, 0] == OOV_ID  # a text without words reads as one unknown word
    assert vec.tokens("One, two! Three four") == ["one", "two", "three"]


def test_json_round_trip():
    vec = TextVectorizer.fit(["the cat sat on the mat"], vocab_size=6, max_tokens=7)
    again = TextVectorizer.from_json(vec.to_json())
    assert again == vec and again.encode_one("the mat") == vec.encode_one("the mat")
    assert vec.to_json()["pad_id"] == 0 and vec.to_json()["oov_id"] == 1


def test_errors():
    with pytest.raises(LstmkitError) as err:
        TextVectorizer.fit(["a"], vocab_size=2, max_tokens=5)
    assert str(err.value) == "vocab_size must be at least 3 (padding, out-of-vocabulary, one word), got 2"
    with pytest.raises(LstmkitError) as err:
        TextVectorizer.from_json({"type": "char", "chars": "abc"})
    assert str(err.value) == "vectorizer.json is not a word vocabulary"


def test_pad():
    ids, lengths = pad([[5, 6], [7]])
    assert torch.equal(ids, torch.tensor([[5, 6], [7, 0]])) and lengths.tolist() == [2, 1]
