"""Hooks; importing registers them."""

from promptsg.engine.hooks import (  # noqa: F401
    checkpoint,
    checkpoint_meta,
    early_stopping,
    progress,
    random_state,
    stages,
    training,
)
