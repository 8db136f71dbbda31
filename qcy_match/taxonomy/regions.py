"""Shaanxi places: cities, their districts and counties, and the three region groups 关中/陕北/陕南."""

from __future__ import annotations

from functools import lru_cache

GROUPS = ("关中", "陕北", "陕南")
# Cities (and the two national-level zones brokers name as if they were cities) with their districts and counties.
CITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "西安": ("关中", ("新城", "碑林", "莲湖", "灞桥", "未央", "雁塔", "阎良", "临潼", "长安", "高陵", "鄠邑", "蓝田",
                    "周至", "高新区", "经开区", "经济技术开发区", "曲江", "浐灞", "航天基地", "航空基地", "国际港务区",
                    "沣东", "沣西")),
    "宝鸡": ("关中", ("渭滨", "金台", "陈仓", "凤翔", "岐山", "扶风", "眉县", "陇县", "千阳", "麟游", "凤县", "太白")),
    "咸阳": ("关中", ("秦都", "杨陵", "渭城", "三原", "泾阳", "乾县", "礼泉", "永寿", "长武", "旬邑", "淳化", "武功",
                    "兴平", "彬州")),
    "铜川": ("关中", ("王益", "印台", "耀州", "宜君")),
    "渭南": ("关中", ("临渭", "华州", "潼关", "大荔", "合阳", "澄城", "蒲城", "白水", "富平", "韩城", "华阴")),
    "杨凌": ("关中", ("杨凌示范区", "杨凌农业高新技术产业示范区")),
    "西咸新区": ("关中", ("秦汉新城", "空港新城", "沣东新城", "沣西新城", "泾河新城")),
    "延安": ("陕北", ("宝塔", "安塞", "延长", "延川", "志丹", "吴起", "甘泉", "富县", "洛川", "宜川", "黄龙", "黄陵",
                    "子长")),
    "榆林": ("陕北", ("榆阳", "横山", "府谷", "靖边", "定边", "绥德", "米脂", "佳县", "吴堡", "清涧", "子洲", "神木")),
    "汉中": ("陕南", ("汉台", "南郑", "城固", "洋县", "西乡", "勉县", "宁强", "略阳", "镇巴", "留坝", "佛坪")),
    "安康": ("陕南", ("汉滨", "汉阴", "石泉", "宁陕", "紫阳", "岚皋", "平利", "镇坪", "旬阳", "白河")),
    "商洛": ("陕南", ("商州", "洛南", "丹凤", "商南", "山阳", "镇安", "柞水")),
}


@lru_cache(maxsize=1)
def _places() -> list[tuple[str, str, str]]:
    """(name, city, group) with the longest names first so 杨凌示范区 wins over 杨凌."""
    out = [(g, "", g) for g in GROUPS] + [("陕西", "", "")]
    for city, (group, places) in CITIES.items():
        out.append((city, city, group))
        out.extend((p, city, group) for p in places)
    return sorted(out, key=lambda t: -len(t[0]))


def locate(text: str) -> tuple[str, str]:
    """Return ``(city, group)`` for a free-text place such as '西安市高新区' or '榆林市神木市'; '' when unknown."""
    text = (text or "").strip()
    if not text:
        return "", ""
    hits = [(name, city, group) for name, city, group in _places() if name in text]
    # Prefer a city named outright; else the longest district name decides the city.
    for name, city, group in hits:
        if name == city:
            return city, group
    for _, city, group in hits:
        return city, group
    return "", ""


def region_matches(wanted: str, city: str, group: str, raw: str) -> bool:
    """Whether a record's place satisfies one region filter value (a group, a city or a district name)."""
    wanted = wanted.strip().removesuffix("市").removesuffix("地区")
    if wanted in GROUPS:
        return group == wanted
    if wanted in CITIES:
        return city == wanted
    return bool(wanted) and wanted in raw
