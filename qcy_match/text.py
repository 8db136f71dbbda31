"""Chinese text: normalisation and tokenisation with jieba, a domain dictionary and protected technical codes.

Two segmenters cut the Chinese: jieba-rs through ``rjieba`` (10–13 times faster on CSL, see the README's
"Tokenising") and pure-Python jieba. They load the same dictionaries and give the same tokens except where two
segmentations are exactly equally likely (see :class:`Tokenizer`).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache, partial
from importlib import resources
from pathlib import Path

from .errors import MissingExtraError

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "jieba", "rjieba")

# Model numbers, standards, formulas and alloy grades: kept whole so 'BZ-YQ1722' or 'PM2.5' is one token.
# A letter run followed by a space and digits ('YD 3361', 'GB 50010') is a standard or model number too.
# The lookahead only says what both branches start with; it lets the regex engine skip Chinese text twice as fast.
_PROTECTED = re.compile(
    r"(?=[A-Za-z0-9])(?:"
    r"[A-Za-z]{1,6} \d{2,}(?:[-.]\d+)*"
    r"|[A-Za-z0-9]+(?:[-/.·+][A-Za-z0-9]+)*"
    r")"
)
# The same pattern as one capturing group: re.split then alternates text between codes (even) and codes (odd).
_PROTECTED_SPLIT = re.compile(f"({_PROTECTED.pattern})")
# Stands for a code while the text around it is cut: not a letter, digit or Chinese character for either segmenter
# (so it cuts the text there and comes out alone), never in normalised text.
_MARK = "\x00"
# A line of a jieba dictionary: word, then optional frequency and tag (jieba's own re_userdict).
_DICT_LINE = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")
# Tokens seen by one Tokenizer, mapped to what is kept of them; emptied past this size so memory stays bounded.
_MEMO_MAX = 1 << 20
# Punctuation that carries no meaning for matching once full-width forms are folded to ASCII.
_PUNCT_MAP = {"。": ".", "，": ",", "、": ",", "；": ";", "：": ":", "？": "?", "！": "!", "“": '"', "”": '"',
              "‘": "'", "’": "'", "【": "[", "】": "]", "《": "<", "》": ">", "（": "(", "）": ")", "—": "-",
              "～": "~", "·": "·"}
# The marks NFKC leaves alone: the rest (，；：？！（）～) are full-width forms that NFKC, run first, has already folded
# to the same ASCII marks, so normalize() need not look for them.
_PUNCT_PAIRS = [(k, v) for k, v in _PUNCT_MAP.items() if k != v and unicodedata.normalize("NFKC", k) == k]


@lru_cache(maxsize=1)
def _t2s() -> tuple[Callable[[str], str], re.Pattern[str]] | None:
    """OpenCC's converter and a pattern of the characters it changes (most texts have none, and conversion is slow).

    A character class, because searching a text with it is ten times faster than testing a set character by
    character.
    """
    try:
        from opencc import OpenCC
    except ImportError:
        return None
    convert = OpenCC("t2s").convert
    changed = "".join(ch for ch in map(chr, range(0x3400, 0xA000)) if convert(ch) != ch)
    return convert, re.compile(f"[{re.escape(changed)}]")


@lru_cache(maxsize=1)
def _nfkc_fold() -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    """A pattern of the BMP characters NFKC changes, and a replacer giving each its own NFKC form (built once, 0.05 s).

    Replacing those characters one by one leaves the NFKC of the whole text the same (both decompose alike), and
    usually leaves a text that passes NFKC's quick check, so the slow whole-text pass is skipped.
    """
    table = {}
    for c in map(chr, range(0x10000)):
        if not "\ud800" <= c <= "\udfff" and (n := unicodedata.normalize("NFKC", c)) != c:
            table[c] = n
    pattern = re.compile("[" + "".join(map(re.escape, table)) + "]")
    return pattern, lambda m: table[m.group()]


def normalize(text: object, traditional: bool = True) -> str:
    """Fold full-width forms to half-width (NFKC), unify punctuation and spaces, and convert traditional to
    simplified characters when OpenCC (the ``[opencc]`` extra) is installed.
    """
    if text is None or (isinstance(text, float) and text != text):
        return ""
    s = str(text)
    # Fast paths with the same result as the plain steps. NFKC of a whole text costs ~30 µs once one character
    # needs it (in Chinese text mostly a full-width form: ，（）％ ℃): folding those characters first leaves most
    # texts passing NFKC's quick check. str.replace per punctuation mark present is ten times faster than
    # str.translate on non-ASCII text.
    if not unicodedata.is_normalized("NFKC", s):
        pattern, fold = _nfkc_fold()
        s = pattern.sub(fold, s)
        if not unicodedata.is_normalized("NFKC", s):
            s = unicodedata.normalize("NFKC", s)
    for mark, ascii_mark in _PUNCT_PAIRS:
        if mark in s:
            s = s.replace(mark, ascii_mark)
    s = " ".join(s.split())  # str.split() and the regex \s agree on what a space is; split is 3 times faster
    if traditional:
        conv = _t2s()
        if conv is not None and conv[1].search(s):
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


def dict_entries(data: bytes, name: str = "<bytes>") -> Iterator[tuple[str, int | None, str | None]]:
    """The (word, frequency, tag) entries of a jieba dictionary, read line by line as jieba's ``load_userdict``
    reads them (so both backends load the same words); ValueError when it is not UTF-8.
    """
    for raw in io.BytesIO(data):
        try:
            line = raw.strip().decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise ValueError(f"dictionary file {name} must be utf-8") from exc
        m = _DICT_LINE.match(line) if line else None
        if m is not None:
            word, freq, tag = m.groups()
            yield word, int(freq) if freq else None, tag.strip() if tag else None


def rjieba_installed() -> bool:
    """Whether the ``rjieba`` package (jieba-rs) can be found, without importing it (the import loads a dictionary)."""
    return importlib.util.find_spec("rjieba") is not None


def resolve_backend(backend: str) -> str:
    """The segmenter ``backend`` names here: ``auto`` is rjieba when installed, else jieba.

    ``rjieba`` asked for by name and not installed is a :class:`~qcy_match.errors.MissingExtraError`: an index
    built with it must not silently be queried with the other backend's tokens.
    """
    if backend not in BACKENDS:
        raise ValueError(f"tokenizer backend must be one of {BACKENDS}, not {backend!r}")
    if backend == "auto":
        return "rjieba" if rjieba_installed() else "jieba"
    if backend == "rjieba" and not rjieba_installed():
        raise MissingExtraError("tokenizer backend 'rjieba' needs the rjieba package (pip install rjieba)")
    return backend


Cut = Callable[[str], list[str]]


def _jieba_cuts(dicts: list[bytes | Path], words: Sequence[str], hmm: bool) -> tuple[Cut, Cut]:
    """Precise and search-mode cutters of a private pure-Python ``jieba.Tokenizer`` holding these dictionaries."""
    import jieba

    tk = jieba.Tokenizer()
    with _jieba_quiet(jieba.default_logger):
        tk.initialize()
    for d in dicts:
        tk.load_userdict(io.BytesIO(d) if isinstance(d, bytes) else str(d))
    for word in words:
        tk.add_word(word)
    return partial(tk.lcut, HMM=hmm), partial(tk.lcut_for_search, HMM=hmm)


def _rjieba_cuts(dicts: list[bytes | Path], words: Sequence[str], hmm: bool) -> tuple[Cut, Cut]:
    """The same with a private ``rjieba.Jieba`` (each instance holds its own dictionary, so nothing leaks)."""
    import rjieba

    jb = rjieba.Jieba()
    for d in dicts:
        data, name = (d, "<bytes>") if isinstance(d, bytes) else (d.read_bytes(), str(d))
        for word, freq, tag in dict_entries(data, name):
            jb.add_word(word, freq, tag)
    for word in words:
        jb.add_word(word, None, None)
    return partial(jb.cut, hmm=hmm), partial(jb.cut_for_search, hmm=hmm)


class Tokenizer:
    """jieba tokeniser with the GB/T 4754 domain dictionary, user dictionaries and stopwords.

    Each instance owns its own segmenter (a ``jieba.Tokenizer`` or an ``rjieba.Jieba``) so user words never leak
    into other tokenisers or into global jieba. A user dictionary is a path, or the bytes of one (an index keeps
    its copies in memory, see ``MatchEngine.save``).

    ``backend``: ``"rjieba"`` (jieba-rs, 10–13 times faster), ``"jieba"`` (pure Python) or ``"auto"`` (rjieba
    when installed, else jieba); the attribute holds the one chosen. Both load the same dictionaries and cut alike,
    except where two segmentations are exactly equally likely (园林景观设计: 园林+景观设计 or 园林景观+设计, words of
    equal frequency), which the two break differently; the README gives the measured agreement on CSL.
    """

    def __init__(self, user_dicts: Sequence[str | bytes] = (), user_words: Sequence[str] = (), domain_dict: bool = True,
                 stopwords: Iterable[str] | None = None, hmm: bool = True, search_mode: bool = True,
                 backend: str = "auto") -> None:
        self.user_dicts = list(user_dicts)
        self.user_words = list(user_words)
        self.domain_dict = domain_dict
        self.hmm = hmm
        # Search mode also emits the dictionary words inside long ones (集成电路封装 → 集成电路, 封装, …), so a
        # query for the short term still meets documents that use the compound.
        self.search_mode = search_mode
        self.stopwords = frozenset(stopwords) if stopwords is not None else default_stopwords()
        self.backend = resolve_backend(backend)
        self._auto = backend == "auto"
        self._cuts: tuple[Cut, Cut] | None = None
        # Raw token → the token kept ('' when dropped), interned: most tokens repeat, so filtering and interning
        # are one dict lookup each instead of a strip, a set test and a character scan.
        self._memo: dict[str, str] = {}
        self._lock = threading.Lock()

    def _segmenter(self) -> tuple[Cut, Cut]:
        """The (precise, search-mode) cutters, built on first use: loading a dictionary takes 0.2 s to seconds."""
        with self._lock:
            if self._cuts is None:
                dicts: list[bytes | Path] = [check_user_dict(d) if not isinstance(d, bytes) else d
                                             for d in self.user_dicts]
                if self.domain_dict:
                    dicts.insert(0, resources.files("qcy_match.data").joinpath("domain_dict.txt").read_bytes())
                if self.backend == "rjieba":
                    try:
                        self._cuts = _rjieba_cuts(dicts, self.user_words, self.hmm)
                    except ImportError as exc:  # installed but broken (a wheel for another platform)
                        if not self._auto:
                            raise MissingExtraError(f"tokenizer backend 'rjieba' cannot be imported ({exc})") from exc
                        logger.warning("rjieba cannot be imported (%s); tokenising with jieba", exc)
                        self.backend = "jieba"
                if self._cuts is None:
                    self._cuts = _jieba_cuts(dicts, self.user_words, self.hmm)
            return self._cuts

    def _keep(self, token: str) -> str:
        """What is kept of ``token`` (stripped and interned), or '' when it is a stopword or carries no meaning."""
        t = token.strip()
        kept = sys.intern(t) if t and t not in self.stopwords and _is_meaningful(t) else ""
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[token] = kept
        return kept

    def tokenize(self, text: str, normalized: bool = False, search_mode: bool | None = None) -> list[str]:
        """Return the tokens of one text: lower-cased ASCII codes kept whole, Chinese cut by jieba, stopwords out.

        ``search_mode`` overrides the instance setting (the engine indexes in search mode and queries without).
        """
        s = text if normalized else normalize(text)
        fine = self.search_mode if search_mode is None else search_mode
        cut = (self._cuts or self._segmenter())[1 if fine else 0]  # no lock once built: _cuts is set once, whole
        parts = _PROTECTED_SPLIT.split(s)
        if len(parts) == 1:
            raw = cut(s) if s else []
        elif _MARK not in s:
            # One call for the whole text: each code becomes a mark that both segmenters keep as a token of its own
            # and that splits the text around it as the code did (the Chinese on each side is cut alone), then
            # the marks are swapped back for the codes. Calls, not characters, are what a short text costs.
            raw = cut(_MARK.join(parts[::2]))
            at = -1
            for code in parts[1::2]:
                at = raw.index(_MARK, at + 1)
                raw[at] = code.lower()
        else:
            raw = []
            for i, part in enumerate(parts):
                if i & 1:
                    raw.append(part.lower())
                elif part:
                    raw += cut(part)
        # Interned (by _keep): an index keeps every document's tokens, and a million documents hold tens of
        # millions of tokens drawn from a vocabulary of a few hundred thousand; one shared object per word saves
        # gigabytes.
        memo = self._memo
        try:
            return list(filter(None, map(memo.__getitem__, raw)))  # '' (dropped) is falsy
        except KeyError:  # a token not seen before
            return [k for k in (memo[t] if t in memo else self._keep(t) for t in raw) if k]

    def tokenize_many(self, texts: Iterable[str], normalized: bool = False, search_mode: bool | None = None
                      ) -> list[list[str]]:
        """The tokens of each text, as :meth:`tokenize` gives them.

        One text per segmenter call: cutting a batch joined by marks in one call was measured as no faster on CSL
        (the segmenter's own work and a dict lookup per token are the cost, not the calls).
        """
        return [self.tokenize(t, normalized, search_mode) for t in texts]

    def to_config(self) -> dict[str, object]:
        """Return the parameters that rebuild this tokeniser (``backend`` as chosen, never ``auto``)."""
        return {"user_dicts": self.user_dicts, "user_words": self.user_words, "domain_dict": self.domain_dict,
                "hmm": self.hmm, "search_mode": self.search_mode, "backend": self.backend}
