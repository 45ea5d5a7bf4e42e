import pytest

from bot.i18n import LOCALES, create_i18n, locale_for_language_code
from tests.fixtures import catalog_keys


def test_both_languages_translate_every_key() -> None:
    chinese, english = catalog_keys("zh_Hans"), catalog_keys("en")
    assert chinese == english
    assert "start.welcome" in chinese


def test_every_key_used_in_code_is_translated() -> None:
    """Any string literal in the code that looks like a catalog key (``notice.acked``, in a
    call, a ternary or a dict) must be in the catalogs."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    known = catalog_keys("zh_Hans")
    prefixes = {key.split(".")[0] for key in known}
    used: set[str] = set()
    for folder in ("handlers", "bot", "scheduler"):
        for source in (root / folder).glob("*.py"):
            for key in re.findall(r'"([a-z_]+\.[a-z_.]+)"', source.read_text(encoding="utf-8")):
                if key.split(".")[0] in prefixes:
                    used.add(key)
    assert len(used) > 50, "the pattern no longer matches the code"
    assert used - known == set()


@pytest.mark.parametrize(
    ("language_code", "locale"),
    [
        ("zh", "zh_Hans"),
        ("zh-hans", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("zh-hant", "zh_Hans"),
        ("en", "en"),
        ("en-GB", "en"),
        ("ru", "zh_Hans"),
        (None, "zh_Hans"),
    ],
)
def test_every_chinese_variant_reads_simplified_chinese(
    language_code: str | None, locale: str
) -> None:
    assert locale_for_language_code(language_code, "zh_Hans") == locale


def test_catalogs_compile_in_memory() -> None:
    i18n = create_i18n("zh_Hans")
    assert set(i18n.available_locales) == set(LOCALES)
    assert i18n.gettext("cancel.done", locale="en") == "Cancelled."
    assert i18n.gettext("cancel.done", locale="zh_Hans") == "已取消。"
