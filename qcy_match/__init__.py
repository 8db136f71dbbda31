"""qcy_match: match technology achievements (科技成果) with enterprise technology needs (企业技术需求)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qcy-match")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

from .config import EngineConfig  # noqa: E402
from .engine import MatchEngine, match_records  # noqa: E402
from .io import Rejection, read_table, write_table  # noqa: E402
from .persistence import IndexFormatError  # noqa: E402
from .records import load_records  # noqa: E402
from .results import Matches  # noqa: E402

__all__ = ["EngineConfig", "IndexFormatError", "MatchEngine", "Matches", "Rejection", "__version__", "load_records",
           "match_records", "read_table", "write_table"]
