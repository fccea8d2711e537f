"""Character vocabulary: fitted on training text, encodes and decodes, saved as JSON."""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import LstmkitError


@dataclass(frozen=True)
class CharVocab:
    """The characters seen in training, sorted, plus one id for characters never seen.

    Attributes:
        chars: the known characters; id k is ``chars[k]``.
        lowercase: whether text is lower-cased before encoding.
    """

    chars: str
    lowercase: bool = False

    @classmethod
    def fit(cls, text: str, lowercase: bool = False) -> "CharVocab":
        if lowercase:
            text = text.lower()
        return cls("".join(sorted(set(text))), lowercase)

    @property
    def unk_id(self) -> int:
        """The id of characters not seen in training (inputs only; never a target, never sampled)."""
        return len(self.chars)

    def __len__(self) -> int:
        """Output classes: every known character plus the unknown id."""
        return len(self.chars) + 1

    def _index(self) -> dict[str, int]:
        return {ch: k for k, ch in enumerate(self.chars)}

    def prepare(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` outside the vocabulary, each once, in order of appearance."""
        index = self._index()
        return list(dict.fromkeys(ch for ch in self.prepare(text) if ch not in index))

    def encode(self, text: str) -> Tensor:
        """Ids (T,) of ``text``; unknown characters become ``unk_id``."""
        index, unk = self._index(), self.unk_id
        return torch.tensor([index.get(ch, unk) for ch in self.prepare(text)], dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[k] if k < len(self.chars) else "\ufffd" for k in ids)

    def to_json(self) -> dict:
        return {"type": "char", "chars": self.chars, "lowercase": self.lowercase}

    @classmethod
    def from_json(cls, data: dict) -> "CharVocab":
        if data.get("type") != "char" or not isinstance(data.get("chars"), str):
            raise LstmkitError("vocab.json is not a character vocabulary")
        return cls(data["chars"], bool(data.get("lowercase", False)))
