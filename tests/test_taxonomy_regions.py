"""GB/T 4754-2017 codes and Shaanxi places."""

from __future__ import annotations

import pytest

from qcy_match.errors import UnknownCodeError
from qcy_match.match.explain import industry_agreement, region_agreement
from qcy_match.taxonomy import gbt as taxonomy
from qcy_match.taxonomy import regions
from qcy_match.taxonomy.gbt import agreement, industries, name_of, normalize_code


# ---- normalize_code --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "code"), [
    ("C3973", "C3973"),
    ("3973", "C3973"),
    ("c3973", "C3973"),
    (" C 3973 ", "C3973"),
    ("c39", "C39"),
    ("39", "C39"),
    ("397", "C397"),
    ("C", "C"),
    ("c", "C"),
    ("3240", "C3240"),
    ("C324", "C324"),
    ("01", "A01"),
    ("集成电路制造", "C3973"),  # exact 小类 name
    ("医药制造业", "C27"),  # exact 大类 name
    ("制造业", "C"),  # exact 门类 name
])
def test_normalize_code(value, code):
    assert normalize_code(value) == code


@pytest.mark.parametrize("value", ["C9999", "D3973", "Z", "", "C39.1", "xyz", "A3973"])
def test_unknown_codes_raise(value):
    with pytest.raises(UnknownCodeError, match="unknown GB/T 4754-2017 code"):
        normalize_code(value)


def test_unknown_name_gets_nearest_by_name_hint():
    with pytest.raises(UnknownCodeError) as info:
        normalize_code("集成电路")  # a word, not the exact name 集成电路制造
    msg = str(info.value)
    assert "nearest by name" in msg
    assert "C3973 集成电路制造" in msg


def test_unknown_code_error_is_a_value_error():
    assert issubclass(UnknownCodeError, ValueError)


def test_tree_nodes():
    nodes = industries()
    ic = nodes["C3973"]
    assert (ic.name, ic.level, ic.parent) == ("集成电路制造", 4, "C397")
    assert nodes["C397"].parent == "C39" and nodes["C39"].parent == "C" and nodes["C"].parent is None
    assert name_of("C3841") == "锂离子电池制造"
    assert name_of("C9999") == ""
    # Every node's parent exists and is one level up.
    for node in nodes.values():
        if node.parent is not None:
            assert nodes[node.parent].level == node.level - 1
            assert node.code.startswith(node.parent)


# ---- agreement -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "level"), [
    (["C3973"], ["C3973"], "小类"),
    (["C3973"], ["C3972"], "中类"),
    (["C3973"], ["C3981"], "大类"),
    (["C3973"], ["C2710"], "门类"),
    (["C3973"], ["A0111"], "none"),
    (["C39"], ["C3973"], "大类"),
    (["C397"], ["C3973"], "中类"),
    (["C"], ["C3973"], "门类"),
    (["C3240"], ["C324"], "中类"),
    (["A01", "C2710"], ["C2710"], "小类"),  # the deepest pair counts
    ([], ["C3973"], "none"),
])
def test_agreement_levels(a, b, level):
    assert agreement(a, b) == level
    assert agreement(b, a) == level


def test_agreement_levels_are_ordered():
    assert taxonomy.AGREEMENT == ("none", "门类", "大类", "中类", "小类")


def test_explain_agreements_unknown_without_data():
    assert industry_agreement([], ["C3973"]) == "unknown"
    assert industry_agreement(["C3973"], ["C3973"]) == "小类"
    assert region_agreement("西安", "关中", "西安", "关中") == "city"
    assert region_agreement("西安", "关中", "宝鸡", "关中") == "group"
    assert region_agreement("西安", "关中", "榆林", "陕北") == "none"
    assert region_agreement("", "", "榆林", "陕北") == "unknown"
    assert region_agreement("", "陕北", "榆林", "陕北") == "group"


# ---- regions ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "city", "group"), [
    ("西安市高新区", "西安", "关中"),
    ("宝鸡市高新区", "宝鸡", "关中"),  # the city named outright wins over 高新区 (listed under 西安)
    ("陕西省西安市雁塔区", "西安", "关中"),
    ("雁塔区", "西安", "关中"),
    ("宝鸡市", "宝鸡", "关中"),
    ("榆林市", "榆林", "陕北"),
    ("榆林市神木市", "榆林", "陕北"),
    ("神木市", "榆林", "陕北"),  # a county alone names its city
    ("延安市宝塔区", "延安", "陕北"),
    ("汉中市", "汉中", "陕南"),
    ("安康市汉滨区", "安康", "陕南"),
    ("韩城市", "渭南", "关中"),
    ("杨凌示范区", "杨凌", "关中"),
    ("秦汉新城", "西咸新区", "关中"),  # longest district name wins over 新城 (a 西安 district)
    ("陕北", "", "陕北"),
    ("关中地区", "", "关中"),
    ("陕西省", "", ""),
    ("北京市海淀区", "", ""),
    ("", "", ""),
    ("   ", "", ""),
])
def test_locate(text, city, group):
    assert regions.locate(text) == (city, group)


def test_locate_none():
    assert regions.locate(None) == ("", "")  # type: ignore[arg-type]


@pytest.mark.parametrize(("wanted", "place", "expected"), [
    ("陕北", "榆林市神木市", True),
    ("陕北", "延安市", True),
    ("陕北", "西安市高新区", False),
    ("陕北地区", "榆林市", True),
    ("关中", "宝鸡市", True),
    ("关中", "汉中市", False),
    ("陕南", "汉中市", True),
    ("西安", "西安市雁塔区", True),
    ("西安市", "西安市高新区", True),
    ("西安市", "宝鸡市高新区", False),
    ("宝鸡", "宝鸡市", True),
    ("榆林", "神木市", True),
    ("雁塔区", "西安市雁塔区", True),
    ("雁塔区", "西安市高新区", False),
    ("神木", "榆林市", False),  # a record known only by city is not inside one of its counties
    ("", "西安市", False),
    ("  ", "西安市", False),
])
def test_region_matches(wanted, place, expected):
    city, group = regions.locate(place)
    assert regions.region_matches(wanted, city, group, place) is expected


def test_every_city_is_in_a_group():
    for city, (group, places) in regions.CITIES.items():
        assert group in regions.GROUPS
        assert regions.locate(city) == (city, group)
        for place in places:
            if not any(p in place for p in regions.CITIES if p != city):
                assert regions.locate(place)[1] == group, place
