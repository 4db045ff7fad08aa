"""CUHK03-NP, the new protocol of CUHK03 (Zhong et al., 2017): 767 train / 700 test ids."""

from __future__ import annotations

import os

from promptsg.datasets.market1501 import Market1501
from promptsg.errors import ConfigError
from promptsg.registry import DATASETS

SUBSETS = ('labeled', 'detected')


@DATASETS.register_module()
class CUHK03NP(Market1501):
    """CUHK03-NP as published: ``data_root`` holds ``labeled/`` and ``detected/``, each in the
    Market-1501 layout (``bounding_box_train/``, ``query/``, ``bounding_box_test/``) with names
    such as ``0001_c1_1.png`` (pid 1, camera 1 of 2).

    ``subset`` picks the hand-labelled or the detector boxes. Splits, ``val_holdout`` and the
    camera rule as :class:`Market1501`.

    Args:
        data_root: the ``cuhk03-np`` folder (holding ``labeled/`` and ``detected/``).
        split: as :class:`Market1501`.
        subset: ``'labeled'`` or ``'detected'``.
    """

    name_hint = 'PPPP_cC_N.png'

    def __init__(
        self, data_root: str, split: str = 'train', subset: str = 'labeled', **kwargs
    ) -> None:
        if subset not in SUBSETS:
            raise ConfigError(
                f'CUHK03NP subset={subset!r} is invalid; choose from labeled, detected'
            )
        self.subset = subset
        super().__init__(data_root=data_root, split=split, **kwargs)

    def image_root(self) -> str:
        """``<data_root>/<subset>``."""
        return os.path.join(self.data_root, self.subset)
