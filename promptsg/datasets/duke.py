"""DukeMTMC-reID and Occluded-Duke, both in the Market-1501 layout as published."""

from __future__ import annotations

from promptsg.datasets.market1501 import Market1501
from promptsg.registry import DATASETS


@DATASETS.register_module()
class DukeMTMCreID(Market1501):
    """DukeMTMC-reID (Zheng et al., 2017): ``bounding_box_train/``, ``query/``,
    ``bounding_box_test/``; names ``0005_c2_f0046985.jpg`` (pid 5, camera 2, frame 46985).

    702 training ids, 702 test ids and 408 gallery-only distractor ids (ordinary pids that
    match no query); 8 cameras. Splits, ``val_holdout`` and the camera rule as
    :class:`Market1501`; point ``data_root`` at the ``DukeMTMC-reID`` folder.
    """

    name_hint = 'PPPP_cC_fFFFFFFF.jpg'


@DATASETS.register_module()
class OccludedDuke(Market1501):
    """Occluded-Duke (Miao et al., 2019): DukeMTMC-reID images re-split so that the queries
    are occluded; the ``Occluded_Duke`` folder holds ``bounding_box_train/``, ``query/`` and
    ``bounding_box_test/`` with Duke's names (``0005_c2_f0046985.jpg``).

    702 training ids, 519 query ids. Splits, ``val_holdout`` and the camera rule as
    :class:`Market1501`.
    """

    name_hint = 'PPPP_cC_fFFFFFFF.jpg'
