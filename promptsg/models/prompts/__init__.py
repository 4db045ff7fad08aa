"""Prompt modules: inversion networks, prompt composer, fixed prompt, frozen text encoder."""

from promptsg.models.prompts import composer, inversion, prompt_learner  # noqa: F401
