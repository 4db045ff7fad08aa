"""Exceptions that tools report as one clear line instead of a traceback."""


class PromptSGError(Exception):
    """Base class: a user-facing problem (bad config, data, checkpoint or weights)."""


class ConfigError(PromptSGError, ValueError):
    """A config value is invalid: the message names the key and the valid choices."""


class UnknownComponentError(ConfigError, KeyError):
    """A component name is not registered in the registry of its kind."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


class DataError(PromptSGError):
    """A data folder, CSV, image list or image is missing or malformed."""


class CheckpointError(PromptSGError):
    """A checkpoint or weight file is missing, unreadable or does not match the model."""


class MissingDependencyError(PromptSGError, ImportError):
    """An optional package a feature needs is not installed: the message names the pip install."""


class WorkDirError(PromptSGError):
    """A work dir is in use by another run, holds a finished run, or cannot be written."""


class RunInterrupted(PromptSGError):
    """A run was stopped by the user (Ctrl-C); the message says where and how to resume."""
