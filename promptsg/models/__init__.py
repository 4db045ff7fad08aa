"""Models: backbones, prompt modules, the MIM and the ReID models; importing registers them."""

from promptsg.models import backbones, data_preprocessor, interaction, prompts  # noqa: F401
from promptsg.models.baseline import ReIDBaseline
from promptsg.models.clip_reid import CLIPReID
from promptsg.models.promptsg import PromptSG

__all__ = ['CLIPReID', 'PromptSG', 'ReIDBaseline']
