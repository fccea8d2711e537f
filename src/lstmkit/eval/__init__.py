"""Metrics and evaluation."""

from .metrics import language_model_metrics

__all__ = ["language_model_metrics"]
