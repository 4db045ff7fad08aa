"""VeRi-776 (Liu et al., 2016), vehicle ReID: ``image_train/``, ``image_query/``, ``image_test/``."""

from __future__ import annotations

from promptsg.datasets.market1501 import Market1501
from promptsg.registry import DATASETS


@DATASETS.register_module()
class VeRi776(Market1501):
    """VeRi-776 as published: ``image_train/``, ``image_query/`` and ``image_test/`` (the
    gallery), names ``0001_c001_00016450_0.jpg`` (vehicle 1, camera 1 of 20).

    576 training and 200 test vehicles. Splits, ``val_holdout`` and the same-id-same-camera
    rule as :class:`Market1501`; camera ids are 0-based. The name/track lists of the release
    are not needed.
    """

    folders = {'train': 'image_train', 'query': 'image_query', 'gallery': 'image_test'}
    name_hint = 'VVVV_cCCC_FFFFFFFF_N.jpg'
