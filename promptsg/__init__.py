"""promptsg: PromptSG on CLIP for person and hand re-identification, in the mmengine style."""

from promptsg.version import __version__

__all__ = ['__version__']
