"""Speech: ``train(...)`` a spoken-word recogniser on labelled recordings, ``load(folder).predict([...])`` WAV files.

Example:
    >>> from lstmkit import speech
    >>> rec = speech.train(data="fsdd", out="runs/fsdd")
    >>> rec.metrics["test"]["accuracy"], rec.metrics["baselines"]["mfcc_logreg"]["accuracy"]
    >>> speech.load("runs/fsdd").predict(["7_jackson_0.wav"])
"""

from .tasks.speech import Recognizer, SpeechObjective, default_config, load, train

__all__ = ["Recognizer", "SpeechObjective", "default_config", "load", "train"]
