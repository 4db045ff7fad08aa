"""Training engine: safe and atomic checkpoints, hooks, optimiser groups and guard, Runner helpers.

Importing it installs the safe checkpoint loader and registers the atomic file backend and
the data-loader worker seeding function.
"""

from promptsg.engine import fileio, seeding  # noqa: F401  (register the backend, worker seeding)
from promptsg.engine.checkpoint import install_checkpoint_loader

install_checkpoint_loader()
