"""Normalisation and tokenisation of Chinese technology text."""

from __future__ import annotations

import threading

import pytest

from qcy_match.text import Tokenizer, default_stopwords, normalize


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
