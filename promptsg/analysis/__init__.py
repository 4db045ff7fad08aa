"""What a run did and what a model costs: logged scalars (``logs``), parameters and FLOPs
(``complexity``). Used by ``tools/analysis_tools``."""
