"""The ``.po`` catalogs compiled in memory, without aiogram: the command line reads its
texts here, so that commands which do not talk to Telegram never import it."""

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
LOCALES = ("zh_Hans", "en")


def compile_catalogs(locales_dir: Path = LOCALES_DIR) -> dict[str, gettext.GNUTranslations]:
    """Every ``.po`` file of a locale (one per feature: ``core.po``, ``people.po``…),
    compiled together in memory."""
    translations: dict[str, gettext.GNUTranslations] = {}
    for locale_dir in sorted(path for path in locales_dir.iterdir() if path.is_dir()):
        merged = Catalog(locale=locale_dir.name.replace("_Hans", ""))
        for po_path in sorted((locale_dir / "LC_MESSAGES").glob("*.po")):
            with po_path.open("rb") as po_file:
                for message in read_po(po_file):
                    if message.id:
                        merged[message.id] = message
        compiled = BytesIO()
        write_mo(compiled, merged)
        compiled.seek(0)
        translations[locale_dir.name] = gettext.GNUTranslations(compiled)
    return translations


@cache
def _catalogs() -> dict[str, gettext.GNUTranslations]:
    return compile_catalogs()


def text(locale: str, key: str) -> str:
    """The catalog's text for ``key`` in ``locale`` (the key itself when it has none)."""
    catalog = _catalogs().get(locale)
    return catalog.gettext(key) if catalog is not None else key
