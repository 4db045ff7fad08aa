"""The stage-3 chronology: version configs diffed into moves, run in order, reported.

``versions`` finds ``v1.py ... vN.py``; ``moves`` names what changed between two resolved
configs; ``run`` trains and tests the versions, each in its own work dir; ``results`` reads the
work dirs' JSON; ``report`` writes the CSVs, the markdown table and the plots; ``readme``
generates ``configs/README.md``.
"""

from promptsg.chronology.moves import describe_moves, diff_configs
from promptsg.chronology.report import collect, write_artefacts
from promptsg.chronology.run import run_chronology
from promptsg.chronology.versions import Version, find_versions

__all__ = [
    'Version',
    'collect',
    'describe_moves',
    'diff_configs',
    'find_versions',
    'run_chronology',
    'write_artefacts',
]
