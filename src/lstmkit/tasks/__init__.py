"""Thin pipelines wiring data, a model, the engine and metrics into the jobs people run."""
