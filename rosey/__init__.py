"""Rosey's kit for function and plugin authors; `rosey.testing` is its pytest plugin."""

from runtime.errors import ChannelError, InvalidInput

__all__ = ["ChannelError", "InvalidInput"]
