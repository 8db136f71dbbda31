"""qcy_match: match technology achievements (科技成果) with enterprise technology needs (企业技术需求).

The public API is what ``__all__`` names; everything else is private by name or lives in a stage's package
(see README, "Architecture"). Names are imported on first use, so ``import qcy_match`` (and ``qcy-match --help``)
does not load pandas, scipy or FAISS.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_API = {
    "EngineConfig": "config",
    "QcyError": "errors", "InputError": "errors", "IndexFormatError": "errors", "FilterError": "errors",
    "RejectedRowsError": "errors", "MissingExtraError": "errors", "UsageError": "errors",
    "OutputError": "errors",
    "load_records": "ingest.records", "Rejection": "ingest.tables", "read_table": "ingest.tables",
    "MatchEngine": "match.engine", "UpdateResult": "match.engine", "Matches": "match.results",
    "ShardedEngine": "match.sharded",
    "match_file": "match.jobs", "match_records": "match.jobs", "JobResult": "match.jobs", "JobChunk": "match.jobs",
    "write_table": "output.tables",
    "SolverRanking": "solvers.votes", "VotingModel": "solvers.votes",
    "Consortium": "solvers.consortium", "ConsortiumModel": "solvers.consortium",
}

__all__ = ["Consortium", "ConsortiumModel", "EngineConfig", "FilterError", "IndexFormatError", "InputError", "JobChunk",
           "JobResult", "MatchEngine", "Matches", "MissingExtraError", "OutputError", "QcyError", "Rejection",
           "RejectedRowsError", "ShardedEngine", "SolverRanking", "UpdateResult", "UsageError", "VotingModel",
           "__version__", "load_records", "match_file", "match_records", "read_table", "write_table"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .config import EngineConfig
    from .errors import (
        FilterError,
        IndexFormatError,
        InputError,
        MissingExtraError,
        OutputError,
        QcyError,
        RejectedRowsError,
        UsageError,
    )
    from .ingest.records import load_records
    from .ingest.tables import Rejection, read_table
    from .match.engine import MatchEngine, UpdateResult
    from .match.jobs import JobChunk, JobResult, match_file, match_records
    from .match.results import Matches
    from .match.sharded import ShardedEngine
    from .output.tables import write_table
    from .solvers.consortium import Consortium, ConsortiumModel
    from .solvers.votes import SolverRanking, VotingModel


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qcy_match' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
