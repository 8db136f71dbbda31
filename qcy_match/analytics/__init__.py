"""Side products over matched records: demand analysis and supply gaps, topics, roadshow shortlists, the report.

``from qcy_match import analytics`` gives the demand analysis (:mod:`.demand`); topics, plots and the report page
are the submodules :mod:`.topics`, :mod:`.plots` (needs the ``[report]`` extra) and :mod:`.report`.
"""

from .demand import (
    DemandAnalysis,
    analyse,
    gap_table,
    greedy_cover,
    group_of,
    roadshow,
    served_sets,
    unmatched_needs,
    unused_by,
    unused_supply,
)

__all__ = ["DemandAnalysis", "analyse", "gap_table", "greedy_cover", "group_of", "roadshow", "served_sets",
           "unmatched_needs", "unused_by", "unused_supply"]
