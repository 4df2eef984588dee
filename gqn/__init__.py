"""Generative Query Network model: pure functions of (tensors, GQNConfig)."""
