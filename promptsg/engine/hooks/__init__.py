"""Hooks; importing registers them."""

from promptsg.engine.hooks import checkpoint_meta, training  # noqa: F401
