"""A tiny untrained character model for the inspect tests (no data needed)."""

from pathlib import Path

import torch

from lstmkit.config import ModelConfig, RunConfig, TextDataConfig, TrainConfig
from lstmkit.data import CharVocab
from lstmkit.models import build_language_model
from lstmkit.tasks.text_generation import TextGenerator

TEXT = 'MACBETH. So foule and faire a day\nI haue not seene. "Hail" (aside)\nLady. Good!\n'


def tiny_generator(cell: str = "lstm", num_layers: int = 2, bidirectional: bool = False) -> TextGenerator:
    torch.manual_seed(0)
    config = RunConfig("textgen", TextDataConfig(), ModelConfig(
        cell=cell, embed_dim=5, hidden_size=6, num_layers=num_layers, dropout=0.0, bidirectional=bidirectional,
    ), TrainConfig())
    vocab = CharVocab.fit(TEXT)
    return TextGenerator(build_language_model(config.model, len(vocab)).eval(), vocab, config, {}, Path("."))
