"""Character-level text generation: ``train(...)`` a model on a text file, ``load(folder).sample(...)`` from it.

Example:
    >>> from lstmkit import textgen
    >>> gen = textgen.train(data="macbeth", out="runs/macbeth", max_time=60)
    >>> print(textgen.load("runs/macbeth").sample(prime="MACBETH.", length=300, temperature=0.8, seed=1))
"""

from .tasks.text_generation import CharLMObjective, TextGenerator, default_config, load, train

__all__ = ["CharLMObjective", "TextGenerator", "default_config", "load", "train"]
