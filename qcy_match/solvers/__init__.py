"""揭榜挂帅 and 创新联合体: who can solve a challenge, and which partners together cover it.

Pure functions over match results, so the engine can offer them (``MatchEngine.solvers`` and
``MatchEngine.consortium``, glued in :mod:`qcy_match.match.teams`): :mod:`~qcy_match.solvers.votes` ranks owners by
the votes of their matched records, :mod:`~qcy_match.solvers.parts` splits a challenge into its parts, and
:mod:`~qcy_match.solvers.consortium` chooses the few owners that cover them.
"""
