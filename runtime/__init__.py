"""Rosey: a function runtime for CyTube chat bots, on NATS and Redis."""

__version__ = "0.1.0"
