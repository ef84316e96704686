"""Gradient-stability service: diagnose exploding and vanishing gradients of an MLP spec."""

__version__ = "0.1.0"
