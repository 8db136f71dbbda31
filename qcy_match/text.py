"""Chinese text: normalisation and tokenisation with jieba, a domain dictionary and protected technical codes."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

# Model numbers, standards, formulas and alloy grades: kept whole so 'BZ-YQ1722' or 'PM2.5' is one token.
# A letter run followed by a space and digits ('YD 3361', 'GB 50010') is a standard or model number too.
_PROTECTED = re.compile(
    r"[A-Za-z]{1,6} \d{2,}(?:[-.]\d+)*"
    r"|[A-Za-z0-9]+(?:[-/.·+][A-Za-z0-9]+)*"
)
_SPACES = re.compile(r"\s+")
# Punctuation that carries no meaning for matching once full-width forms are folded to ASCII.
_PUNCT_MAP = {"。": ".", "，": ",", "、": ",", "；": ";", "：": ":", "？": "?", "！": "!", "“": '"', "”": '"',
              "‘": "'", "’": "'", "【": "[", "】": "]", "《": "<", "》": ">", "（": "(", "）": ")", "—": "-",
              "～": "~", "·": "·"}
_PUNCT_TABLE = str.maketrans(_PUNCT_MAP)


@lru_cache(maxsize=1)
def _t2s() -> tuple[Callable[[str], str], frozenset[str]] | None:
    """OpenCC's converter and the characters it changes (most texts have none, and conversion is slow)."""
    try:
        from opencc import OpenCC
    except ImportError:
        return None
    convert = OpenCC("t2s").convert
    changed = frozenset(ch for ch in map(chr, range(0x3400, 0xA000)) if convert(ch) != ch)
    return convert, changed


def normalize(text: object, traditional: bool = True) -> str:
    """Fold full-width forms to half-width (NFKC), unify punctuation and spaces, and convert traditional to
    simplified characters when OpenCC (the ``[opencc]`` extra) is installed.
    """
    if text is None or (isinstance(text, float) and text != text):
        return ""
    s = unicodedata.normalize("NFKC", str(text)).translate(_PUNCT_TABLE)
    s = _SPACES.sub(" ", s).strip()
    if traditional:
        conv = _t2s()
        if conv is not None and not conv[1].isdisjoint(s):
            s = conv[0](s)
    return s


@lru_cache(maxsize=1)
def default_stopwords() -> frozenset[str]:
    """Return the shipped stopword list (function words and boilerplate of technology listings)."""
    text = resources.files("qcy_match.data").joinpath("stopwords.txt").read_text("utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def _is_meaningful(tok: str) -> bool:
    if len(tok) == 1 and not ("\u4e00" <= tok <= "\u9fff"):
        return False
    return any(ch.isalnum() for ch in tok)


_JIEBA_LOG_LOCK = threading.Lock()


@contextmanager
def _jieba_quiet(jieba_logger: logging.Logger) -> Iterator[None]:
    """Hide jieba's dictionary-build messages, for this block only.

    jieba logs them at DEBUG through a stderr handler it installs on its own logger, so every engine would print
    them. Raising that logger's level just while building, and restoring it after, keeps them off the screen
    without changing jieba's logging for the rest of the process. The lock keeps two builds from restoring each
    other's level.
    """
    with _JIEBA_LOG_LOCK:
        level = jieba_logger.level
        jieba_logger.setLevel(max(level, logging.WARNING))
        try:
            yield
        finally:
            jieba_logger.setLevel(level)


def check_user_dict(path: str | Path) -> Path:
    """``path`` as a Path, or FileNotFoundError naming it when it is no file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"user dictionary {path}: no such file")
    return Path(path)


class Tokenizer:
    """jieba tokeniser with the GB/T 4754 domain dictionary, user dictionaries and stopwords.

    Each instance owns its own ``jieba.Tokenizer`` so user words never leak into other users of jieba. A user
    dictionary is a path, or the bytes of one (an index keeps its copies in memory, see ``MatchEngine.save``).
    """

    def __init__(self, user_dicts: Sequence[str | bytes] = (), user_words: Sequence[str] = (), domain_dict: bool = True,
                 stopwords: Iterable[str] | None = None, hmm: bool = True, search_mode: bool = True) -> None:
        self.user_dicts = list(user_dicts)
        self.user_words = list(user_words)
        self.domain_dict = domain_dict
        self.hmm = hmm
        # Search mode also emits the dictionary words inside long ones (集成电路封装 → 集成电路, 封装, …), so a
        # query for the short term still meets documents that use the compound.
        self.search_mode = search_mode
        self.stopwords = frozenset(stopwords) if stopwords is not None else default_stopwords()
        self._jieba: object | None = None
        self._lock = threading.Lock()

    def _backend(self) -> object:
        with self._lock:
            if self._jieba is None:
                import jieba

                tk = jieba.Tokenizer()
                with _jieba_quiet(jieba.default_logger):
                    tk.initialize()
                if self.domain_dict:
                    with resources.as_file(resources.files("qcy_match.data").joinpath("domain_dict.txt")) as p:
                        tk.load_userdict(str(p))
                for d in self.user_dicts:
                    tk.load_userdict(io.BytesIO(d) if isinstance(d, bytes) else str(check_user_dict(d)))
                for word in self.user_words:
                    tk.add_word(word)
                self._jieba = tk
            return self._jieba

    def tokenize(self, text: str, normalized: bool = False, search_mode: bool | None = None) -> list[str]:
        """Return the tokens of one text: lower-cased ASCII codes kept whole, Chinese cut by jieba, stopwords out.

        ``search_mode`` overrides the instance setting (the engine indexes in search mode and queries without).
        """
        s = text if normalized else normalize(text)
        tk = self._backend()
        fine = self.search_mode if search_mode is None else search_mode
        cut = tk.lcut_for_search if fine else tk.lcut  # type: ignore[attr-defined]
        out: list[str] = []
        pos = 0
        for m in _PROTECTED.finditer(s):
            if m.start() > pos:
                out.extend(cut(s[pos:m.start()], HMM=self.hmm))
            out.append(m.group(0).lower())
            pos = m.end()
        if pos < len(s):
            out.extend(cut(s[pos:], HMM=self.hmm))
        stop = self.stopwords
        # Interned: an index keeps every document's tokens, and a million documents hold tens of millions of
        # tokens drawn from a vocabulary of a few hundred thousand; one shared object per word saves gigabytes.
        return [sys.intern(t) for t in (w.strip() for w in out) if t and t not in stop and _is_meaningful(t)]

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokenise a batch of texts."""
        return [self.tokenize(t) for t in texts]

    def to_config(self) -> dict[str, object]:
        """Return the parameters that rebuild this tokeniser."""
        return {"user_dicts": self.user_dicts, "user_words": self.user_words, "domain_dict": self.domain_dict,
                "hmm": self.hmm, "search_mode": self.search_mode}
