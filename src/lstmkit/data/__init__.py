"""Datasets, vocabularies and batching; model-agnostic."""

from .batch import Batch
from .files import read_text
from .registry import REGISTRY, download, find_local, get_dataset, locate
from .text import LMWindows, lm_streams, split_tail
from .vocab import CharVocab

__all__ = [
    "REGISTRY",
    "Batch",
    "CharVocab",
    "LMWindows",
    "download",
    "find_local",
    "get_dataset",
    "lm_streams",
    "locate",
    "read_text",
    "split_tail",
]
