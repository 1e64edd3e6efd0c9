"""Rosey's kit for function and plugin authors; `rosey.testing` is its pytest plugin."""

from runtime.errors import InvalidInput

__all__ = ["InvalidInput"]
