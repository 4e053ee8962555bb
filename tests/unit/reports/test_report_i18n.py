"""Both languages say everything, with the same placeholders; the textbook keeps its wording."""

from __future__ import annotations

import string

from reports import i18n


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_message_exists_in_both_languages():
    assert i18n.check_messages() == []


def test_placeholders_agree_between_languages():
    for key, en in i18n.MESSAGES["en"].items():
        zh = _fields(i18n.MESSAGES["zh"][key])
        # Chinese has no plural, so it may drop {plural}; every other field must be the same.
        assert zh == _fields(en) - {"plural"} or zh == _fields(en), key


def test_chinese_claims_are_the_textbook_wording():
    zh = i18n.MESSAGES["zh"]
    assert (zh["claim.startup.c"], zh["claim.startup.v"]) == ("秒级", "分钟级")
    assert (zh["claim.disk.c"], zh["claim.disk.v"]) == ("一般为 MB", "一般为 GB")
    assert (zh["claim.performance.c"], zh["claim.performance.v"]) == ("接近原生", "弱于")
    assert (zh["claim.density.c"], zh["claim.density.v"]) == ("单机支持上千个容器", "一般几十个")
    assert (zh["claim.isolation.c"], zh["claim.isolation.v"]) == ("安全隔离", "完全隔离")
    for key, (c, v) in i18n.ORIGINAL_CLAIMS.items():
        assert (zh[f"claim.{key}.c"], zh[f"claim.{key}.v"]) == (c, v)


def test_unknown_language_falls_back_to_english():
    assert i18n.t("fr", "verdict.holds") == "holds"


def test_check_label_translates_known_checks_and_keeps_unknown_names():
    assert i18n.check_label("zh", "own_network_stack") == "独立网络栈"
    assert i18n.check_label("en", "own_network_stack") == "own network stack"
    assert i18n.check_label("zh", "some_new_check") == "some_new_check"
    assert i18n.check_label("en", "some_new_check", "some_new…") == "some_new…"


def test_table_words_of_both_languages_cover_every_row():
    for lang in i18n.LANGS:
        for row in i18n.ROWS:
            for key in (f"row.{row}", f"claim.{row}.c", f"claim.{row}.v"):
                assert i18n.MESSAGES[lang][key], (lang, key)
    assert set(i18n.ROWS) == set(i18n.ORIGINAL_CLAIMS) == set(i18n.ORIGINAL_ROW_NAMES)
