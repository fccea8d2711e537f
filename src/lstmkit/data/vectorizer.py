"""TextVectorizer: raw text -> word ids, as the tutorials' TextVectorization layer does it.

Standardisation lower-cases the text, replaces markup such as ``<br />`` with a space and drops punctuation
(apostrophes inside words are kept: "don't" stays one word). The vocabulary holds the V most frequent
training words; id 0 pads, id 1 stands for any word outside the vocabulary. Texts longer than ``max_tokens``
keep their first ``max_tokens`` words, and every encoded text keeps its true length so that padding never
reaches a recurrent state. Saved as JSON; nothing is pickled.
"""

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import LstmkitError

PAD_ID = 0
OOV_ID = 1
_MARKUP = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters and digits, with inner apostrophes


def standardize(text: str) -> str:
    """Lower-cased text with markup tags replaced by spaces and curly apostrophes made straight."""
    return _MARKUP.sub(" ", text.lower()).replace("\u2019", "'")


def tokenize(text: str) -> list[str]:
    """The words of ``text`` after ``standardize``; punctuation is dropped."""
    return _WORD.findall(standardize(text))


@dataclass(frozen=True)
class TextVectorizer:
    """Word vocabulary plus the truncation length.

    Attributes:
        words: the vocabulary, most frequent first; ``words[k]`` has id ``k + 2``.
        max_tokens: N, the most words kept from the start of a text.

    Example:
        >>> vec = TextVectorizer.fit(["A good film.", "A bad film<br />"], vocab_size=10, max_tokens=5)
        >>> ids, lengths = vec.encode(["good film", "a terrible film"])   # (2, 3), (2,)
    """

    words: tuple[str, ...]
    max_tokens: int

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int, max_tokens: int) -> "TextVectorizer":
        """Keeps the ``vocab_size - 2`` most frequent words (ties broken alphabetically), so that the ids,
        padding and out-of-vocabulary included, number ``vocab_size``."""
        if vocab_size < 3:
            raise LstmkitError(
                f"vocab_size must be at least 3 (padding, out-of-vocabulary, one word), got {vocab_size}"
            )
        counts = Counter(word for text in texts for word in tokenize(text))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(tuple(word for word, _ in ranked[: vocab_size - 2]), max_tokens)

    def __len__(self) -> int:
        """V: the number of ids, padding and out-of-vocabulary included."""
        return len(self.words) + 2

    def _index(self) -> dict[str, int]:
        index = getattr(self, "_cached_index", None)
        if index is None:
            index = {word: k + 2 for k, word in enumerate(self.words)}
            object.__setattr__(self, "_cached_index", index)
        return index

    def tokens(self, text: str) -> list[str]:
        """The words the model reads from ``text``: tokenised and truncated to ``max_tokens``."""
        return tokenize(text)[: self.max_tokens]

    def encode_one(self, text: str) -> list[int]:
        """Ids of ``text`` (at most ``max_tokens``; a text without words becomes one out-of-vocabulary id)."""
        index = self._index()
        return [index.get(word, OOV_ID) for word in self.tokens(text)] or [OOV_ID]

    def encode(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Right-padded ids (B, T) with T the longest encoded text, and true lengths (B,)."""
        return pad([self.encode_one(text) for text in texts])

    def to_json(self) -> dict:
        return {"type": "words", "max_tokens": self.max_tokens, "pad_id": PAD_ID, "oov_id": OOV_ID,
                "words": list(self.words)}

    @classmethod
    def from_json(cls, data: dict) -> "TextVectorizer":
        if data.get("type") != "words" or not isinstance(data.get("words"), list):
            raise LstmkitError("vectorizer.json is not a word vocabulary")
        return cls(tuple(data["words"]), int(data["max_tokens"]))


def pad(sequences: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Right-pads id lists with PAD_ID: ids (B, T) and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)       # (B,)
    ids = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.long)  # (B, T)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return ids, lengths
