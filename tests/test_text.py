"""Normalisation and tokenisation of Chinese technology text."""

from __future__ import annotations

import json
import sys
import threading
import unicodedata

import pytest
from conftest import CSL
from hypothesis import given, settings
from hypothesis import strategies as st

from qcy_match import EngineConfig, MatchEngine
from qcy_match.errors import MissingExtraError
from qcy_match.text import (
    _PROTECTED_SPLIT,
    _PUNCT_MAP,
    Tokenizer,
    _is_meaningful,
    default_stopwords,
    dict_entries,
    normalize,
    resolve_backend,
)

needs_rjieba = pytest.mark.skipif(not __import__("importlib").util.find_spec("rjieba"), reason="rjieba not installed")


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


# ---- normalize -------------------------------------------------------------------------------------------------
def test_fullwidth_folds_to_halfwidth():
    assert normalize("ＧａＮ　功率器件，ＰＭ２．５（测试）") == "GaN 功率器件,PM2.5(测试)"
    assert normalize("ＹＤ　３３６１") == "YD 3361"


def test_chinese_punctuation_unified():
    assert normalize("钛合金；锻件：热处理！“好”【新】《标准》") == '钛合金;锻件:热处理!"好"[新]<标准>'


def test_traditional_to_simplified():
    assert normalize("一種基於深度學習的圖像識別方法") == "一种基于深度学习的图像识别方法"
    assert normalize("鈦合金鍛件熱處理") == "钛合金锻件热处理"
    # Conversion can be turned off.
    assert normalize("一種基於深度學習", traditional=False) == "一種基於深度學習"


def test_simplified_text_unchanged():
    text = "集成电路芯片封装测试工艺"
    assert normalize(text) == text


def test_spaces_collapsed_and_stripped():
    assert normalize("  集成\t电路 \n\n 芯片  ") == "集成 电路 芯片"


@pytest.mark.parametrize("empty", [None, float("nan"), "", "   "])
def test_missing_values_normalise_to_empty(empty):
    assert normalize(empty) == ""


def test_non_string_values():
    assert normalize(3973) == "3973"


# ---- tokenize --------------------------------------------------------------------------------------------------
CODES = "采用YD 3361标准和BZ-YQ1722型仪器，检测WC/Co硬质合金、GaN器件与PM2.5颗粒"


@pytest.mark.parametrize("code", ["yd 3361", "bz-yq1722", "wc/co", "gan", "pm2.5"])
def test_codes_kept_whole_and_lower_cased(tok, code):
    tokens = tok.tokenize(CODES)
    assert code in tokens


def test_code_pieces_are_not_tokens(tok):
    tokens = tok.tokenize(CODES)
    for piece in ("yd", "3361", "bz", "yq1722", "wc", "co", "pm2", "5", "YD 3361", "GaN"):
        assert piece not in tokens


def test_fullwidth_code_is_same_token(tok):
    assert "gan" in tok.tokenize("ＧａＮ功率器件")
    assert "pm2.5" in tok.tokenize("ＰＭ２．５监测")


@pytest.mark.parametrize("word", ["集成电路", "锂离子电池", "钛合金"])
def test_domain_dictionary_keeps_terms_whole(tok, word):
    text = "本项目研究集成电路和锂离子电池以及钛合金"
    assert word in tok.tokenize(text)


def test_without_domain_dictionary_jieba_splits_battery():
    # The control for the test above: plain jieba cuts 锂离子电池 in two, the domain dictionary keeps it whole.
    tokens = Tokenizer(domain_dict=False).tokenize("锂离子电池正极材料")
    assert "锂离子电池" not in tokens
    assert "电池" in tokens


def test_stopwords_removed(tok):
    tokens = tok.tokenize("一种基于深度学习的图像识别方法的研究和技术")
    for stop in ("一种", "基于", "的", "研究", "和", "技术", "方法"):
        assert stop in default_stopwords() or stop == "方法"
        assert stop not in tokens
    assert "深度" in tokens and "图像" in tokens


def test_punctuation_and_single_letters_removed(tok):
    tokens = tok.tokenize("钛合金，锻件。A 型（热处理）！")
    assert all(any(ch.isalnum() for ch in t) for t in tokens)
    assert "a" not in tokens and "A" not in tokens
    assert "钛合金" in tokens and "锻件" in tokens and "热处理" in tokens


def test_custom_stopwords_replace_the_default():
    tokens = Tokenizer(stopwords=["钛合金"]).tokenize("钛合金的锻件")
    assert "钛合金" not in tokens
    assert "的" in tokens  # the default list no longer applies


def test_traditional_text_tokenises_like_simplified(tok):
    assert tok.tokenize("鈦合金鍛件熱處理") == tok.tokenize("钛合金锻件热处理")


def test_normalized_flag_skips_normalisation(tok):
    # With normalized=True the caller promises normalised text; full-width letters then pass through untouched.
    assert "gan" in tok.tokenize("ＧａＮ器件")
    assert "gan" not in tok.tokenize("ＧａＮ器件", normalized=True)


def test_user_words_kept_whole_without_leaking(tok):
    text = "量子点显示屏幕"
    assert text not in tok.tokenize(text)
    custom = Tokenizer(user_words=[text])
    assert text in custom.tokenize(text)
    # Each tokenizer owns its jieba instance: the user word does not reach other tokenizers or global jieba.
    assert text not in tok.tokenize(text)
    import jieba

    assert text not in jieba.lcut(text)


def test_user_dictionary_file(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("量子点显示屏幕 100 n\n", encoding="utf-8")
    assert "量子点显示屏幕" in Tokenizer(user_dicts=[str(path)]).tokenize("量子点显示屏幕")


def test_missing_user_dictionary_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        Tokenizer(user_dicts=[str(tmp_path / "nope.txt")]).tokenize("钛合金")


def test_tokenize_many_and_config(tok):
    assert tok.tokenize_many(["钛合金", "集成电路"]) == [tok.tokenize("钛合金"), tok.tokenize("集成电路")]
    cfg = Tokenizer(user_words=["量子点"], domain_dict=False).to_config()
    assert cfg["user_words"] == ["量子点"] and cfg["domain_dict"] is False


def test_tokenizer_is_thread_safe_on_first_use(tok):
    tk = Tokenizer()  # not initialised yet: the threads race to build its jieba instance
    texts = ["集成电路芯片封装", "钛合金锻件热处理", "锂离子电池正极材料", "低乳糖液体乳"] * 4
    expected = [tok.tokenize(t) for t in texts]
    results: dict[int, list[list[str]]] = {}

    def work(i: int) -> None:
        results[i] = [tk.tokenize(t) for t in texts]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == expected for i in range(8))


def test_tokens_are_shared_objects_so_big_indexes_hold_one_copy_per_word(tok):
    a = tok.tokenize("集成电路封装测试")
    b = tok.tokenize("先进集成电路设计")
    word = "".join(["电", "路"])  # built at run time, so not the literal's object
    assert word in a and word in b
    assert a[a.index(word)] is b[b.index(word)]


# ---- normalisation fast paths -----------------------------------------------------------------------------------
ALPHABET = st.sampled_from(list("集成电路钛合金锻件鈦處理ＧａＮ，（）％～：ＰＭ２．５℃ⅠⅡ①…″、。“”《》—·Å\u0301\u0308eé"
                                "\u3000\t\n AZaz09-./+\uf900\ufe58\u00a0\x00"))


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=40))
def test_normalize_fast_paths_give_the_plain_result(text):
    # Every step on every text, as normalize() did before its fast paths.
    plain = unicodedata.normalize("NFKC", text).translate(str.maketrans(_PUNCT_MAP))
    plain = " ".join(plain.split())
    assert normalize(text, traditional=False) == plain


def test_normalize_folds_compatibility_characters_like_nfkc():
    assert normalize("温度８０℃，Ⅱ型①号") == "温度80°C,II型1号"
    assert normalize("Å\u0301") == unicodedata.normalize("NFKC", "Å\u0301")


# ---- backends ---------------------------------------------------------------------------------------------------
# Real sentences of technology listings and CSL abstracts: codes, units, Latin words, domain terms, user words.
SENTENCES = [
    "28纳米集成电路芯片封装测试工艺，面向集成电路制造的晶圆级封装与测试工艺，提高芯片良率。",
    "采用YD 3361标准和BZ-YQ1722型仪器，检测WC/Co硬质合金、GaN器件与PM2.5颗粒",
    "采用修正的Rodrigues参数(MRP),建立了飞行器姿态控制系统的数学模型；利用刚体姿态动力学方程和运动学方程",
    "提出了基于平方和(SOS)方法的一种新的设计方法.仿真结果表明,用这种方法设计的控制器减少了迭代次数",
    "锂离子电池正极材料LiFePO4的溶胶-凝胶法合成及其0.5C倍率下的电化学性能研究",
    "以COX-1和COX-2为靶点，筛选了32种中药提取物，IC50值低于10μmol/L的有5种",
    "氮化镓功率器件外延片生长工艺，可用于集成电路和功率芯片制造，击穿电压高于650V。",
    "基于深度学习的遥感影像道路提取方法，在Massachusetts数据集上F1达到0.87",
    "低乳糖液体乳的酶解工艺优化：乳糖酶添加量0.3%，酶解温度42℃，时间4h",
    "鈦合金鍛件熱處理工藝對TC4組織與性能的影響",
    "城市轨道交通车辆转向架构架疲劳寿命评估，依据EN 13749与UIC 615-4标准",
    "量子点显示屏幕用钙钛矿纳米晶的制备与稳定性",
]
# Where two segmentations are equally likely the backends break the tie differently (README, "Tokenising").
TIE = "城市住宅区园林景观设计的相关探讨"


@needs_rjieba
@pytest.mark.parametrize("search_mode", [True, False], ids=["search", "query"])
def test_backends_agree_on_technical_sentences(search_mode):
    jb, rj = Tokenizer(backend="jieba"), Tokenizer(backend="rjieba")
    for text in SENTENCES:
        assert rj.tokenize(text, search_mode=search_mode) == jb.tokenize(text, search_mode=search_mode), text


@needs_rjieba
def test_backends_break_an_exact_tie_differently():
    jb, rj = Tokenizer(backend="jieba"), Tokenizer(backend="rjieba")
    assert jb.tokenize(TIE, search_mode=False) == ["城市", "住宅区", "园林", "景观设计"]
    assert rj.tokenize(TIE, search_mode=False) == ["城市", "住宅区", "园林景观"]  # 设计 is a stopword


@needs_rjieba
def test_backends_agree_with_user_dictionaries_and_words(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_bytes("\ufeff量子点显示屏幕 100 n\n钙钛矿纳米晶\n\n 转向架构架 5\n疲劳寿命评估 nz\n".encode())
    kw = {"user_dicts": [str(path), "溶胶凝胶法 30\n".encode()], "user_words": ["遥感影像", "道路提取"]}
    jb, rj = Tokenizer(backend="jieba", **kw), Tokenizer(backend="rjieba", **kw)
    for text in SENTENCES:
        assert rj.tokenize(text) == jb.tokenize(text), text
    for word in ("量子点显示屏幕", "钙钛矿纳米晶", "遥感影像", "道路提取"):
        assert any(word in rj.tokenize(t, search_mode=False) for t in SENTENCES), word


def test_dictionary_lines_read_as_jieba_reads_them():
    data = "\ufeff钛合金 3000 n\n  \n量子点 nz\n光刻胶\nGB 50010 12\n".encode()
    assert list(dict_entries(data)) == [("钛合金", 3000, "n"), ("量子点", None, "nz"), ("光刻胶", None, None),
                                        ("GB 50010", 12, None)]
    with pytest.raises(ValueError, match="utf-8"):
        list(dict_entries("钛合金".encode("gbk"), "gbk.txt"))


@needs_rjieba
def test_user_words_do_not_leak_between_rjieba_tokenizers():
    import rjieba

    text = "量子点显示屏幕"
    custom, plain = Tokenizer(user_words=[text], backend="rjieba"), Tokenizer(backend="rjieba")
    assert text in custom.tokenize(text)
    assert text not in plain.tokenize(text)
    assert text not in rjieba.cut(text)  # the module's own instance
    assert text not in Tokenizer(backend="rjieba").tokenize(text)  # nor a tokenizer built after


def test_codes_beside_a_nul_character_are_still_kept(tok):
    # NUL stands for codes inside tokenize; a text that holds one is cut piece by piece instead.
    assert tok.tokenize("钛合金\x00YD 3361标准", normalized=True) == tok.tokenize("钛合金 YD 3361标准")


def test_auto_falls_back_to_jieba_without_rjieba(monkeypatch):
    monkeypatch.setitem(sys.modules, "rjieba", None)  # import rjieba now fails, as when it is not installed
    assert resolve_backend("auto") == "jieba"
    tk = Tokenizer()
    assert tk.backend == "jieba" and tk.to_config()["backend"] == "jieba"
    assert "钛合金" in tk.tokenize("钛合金锻件")
    with pytest.raises(MissingExtraError, match="pip install rjieba"):
        Tokenizer(backend="rjieba")


def test_auto_falls_back_when_rjieba_is_found_but_cannot_be_imported(monkeypatch, caplog):
    monkeypatch.setattr("qcy_match.text.rjieba_installed", lambda: True)
    monkeypatch.setitem(sys.modules, "rjieba", None)
    tk = Tokenizer(domain_dict=False)
    assert tk.backend == "rjieba"
    assert tk.tokenize("钛合金锻件") and tk.backend == "jieba"
    assert "rjieba cannot be imported" in caplog.text
    with pytest.raises(MissingExtraError):
        Tokenizer(backend="rjieba", domain_dict=False).tokenize("钛合金")


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="auto"):
        Tokenizer(backend="pkuseg")


# ---- an index keeps the backend that cut its tokens -------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_index(tmp_path_factory, achievements):
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(achievements)
    path = tmp_path_factory.mktemp("idx") / "index"
    engine.save(path)
    return engine, path


def test_index_records_the_backend_it_used(saved_index):
    engine, path = saved_index
    want = "rjieba" if __import__("importlib").util.find_spec("rjieba") else "jieba"
    assert engine.config.tokenizer == engine.tokenizer_.backend == want
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["tokenizer"] == want
    loaded = MatchEngine.load(path)
    assert loaded.tokenizer_.backend == want
    assert loaded.match(engine.records_.head(3)).to_frame()["achievement_id"].tolist() == \
        engine.match(engine.records_.head(3)).to_frame()["achievement_id"].tolist()


def test_index_saved_before_the_setting_loads_with_jieba(saved_index, tmp_path):
    import shutil

    _, path = saved_index
    old = tmp_path / "old"
    shutil.copytree(path, old)
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    del manifest["config"]["tokenizer"]
    (old / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    loaded = MatchEngine.load(old)
    assert loaded.config.tokenizer == "jieba" and loaded.tokenizer_.backend == "jieba"


@needs_rjieba
def test_rjieba_index_is_refused_where_rjieba_is_missing(saved_index, monkeypatch):
    _, path = saved_index
    monkeypatch.setitem(sys.modules, "rjieba", None)
    with pytest.raises(MissingExtraError, match="rjieba"):
        MatchEngine.load(path)


def test_jieba_index_stays_jieba_where_rjieba_is_installed(achievements, tmp_path):
    engine = MatchEngine(EngineConfig(encoder="lsa", tokenizer="jieba")).index(achievements.head(5))
    engine.save(tmp_path / "j")
    loaded = MatchEngine.load(tmp_path / "j")
    assert loaded.config.tokenizer == "jieba" and loaded.tokenizer_.backend == "jieba"


# ---- the tokens on real records are the plain definition's -------------------------------------------------------
def plain_tokens(tk: Tokenizer, text: str, search_mode: bool) -> list[str]:
    """The tokenizer's definition written out plainly: the normalised text cut piece by piece between codes (each
    piece alone), codes lower-cased, every token stripped and kept unless empty, a stopword or meaningless."""
    cut = tk._segmenter()[1 if search_mode else 0]
    raw: list[str] = []
    for i, part in enumerate(_PROTECTED_SPLIT.split(normalize(text))):
        raw += [part.lower()] if i & 1 else cut(part) if part else []
    stripped = (t.strip() for t in raw)
    return [t for t in stripped if t and t not in tk.stopwords and _is_meaningful(t)]


@pytest.fixture(scope="module")
def csl_texts() -> list[str]:
    if not CSL.is_file():
        pytest.skip("CSL data not found")
    rows = [json.loads(line) for line in CSL.read_text("utf-8").splitlines() if line.strip()]
    texts = [f"{r['title']} {' '.join(r['keywords'])} {r['abstract']}" for r in rows]
    return texts + [r["title"] for r in rows]  # short texts too


@pytest.mark.parametrize("backend", ["auto", "jieba"])
@pytest.mark.parametrize("search_mode", [True, False], ids=["search", "query"])
def test_tokens_of_every_csl_record_are_the_plain_definitions(csl_texts, backend, search_mode):
    texts = csl_texts if backend == "auto" else csl_texts[::10]  # pure-Python jieba is ten times slower
    tk = Tokenizer(backend=backend)
    want = [plain_tokens(tk, t, search_mode) for t in texts]
    assert sum(map(len, want)) > 20 * len(texts)  # real token lists, not empty ones
    assert tk.tokenize_many(texts, search_mode=search_mode) == want
    normed = [normalize(t) for t in texts]
    assert tk.tokenize_many(normed, normalized=True, search_mode=search_mode) == want
    assert [tk.tokenize(t, search_mode=search_mode) for t in texts[:300]] == want[:300]


def test_many_texts_with_control_characters_empty_texts_and_dropped_codes(tok):
    # A text holding the code mark (NUL) is cut piece by piece; empty texts and texts of dropped codes (single
    # letters) give empty lists in place.
    texts = ["钛合金\x00YD 3361标准", "", "a b c", "集成电路\x01封装 GaN", "   ", "PM2.5监测", "x", "芯片\x00\x01",
             "锂电池 e 正极"] * 3
    want = [plain_tokens(tok, t, True) for t in texts]
    assert tok.tokenize_many(texts) == want
    assert want[1] == want[2] == want[4] == [] and "gan" in want[3] and "yd 3361" in want[0]
    assert tok.tokenize_many([]) == []


def test_normalize_looks_only_for_the_punctuation_nfkc_leaves():
    # The full-width marks left out of the scan are the ones NFKC folds to the same ASCII mark.
    for mark, ascii_mark in _PUNCT_MAP.items():
        assert normalize(f"钛{mark}合金") == f"钛{ascii_mark}合金"
