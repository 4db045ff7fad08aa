"""Prompt modules: inversion networks, prompt composer, fixed prompt, frozen text encoder."""

from promptsg.models.prompts import composer, inversion  # noqa: F401
