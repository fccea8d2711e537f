"""Backbone and heads; no training code."""

from .encoder import SequenceEncoder
from .heads import LMHead
from .language_model import LanguageModel, build_language_model

__all__ = ["LMHead", "LanguageModel", "SequenceEncoder", "build_language_model"]
