"""Training engine: safe checkpoint loading, hooks, optimiser constructors, Runner helpers."""

from promptsg.engine.checkpoint import install_checkpoint_loader

install_checkpoint_loader()
