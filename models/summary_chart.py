"""The daily summary's chart: report completion per node below the reader's (buildings of a
grid, grids of a zone, zones of the county) as stacked bars, drawn with matplotlib's Agg
backend (no display, no pyplot state: safe in a worker thread).

Chinese labels need a CJK font; matplotlib draws an empty box for a glyph its font lacks.
So the labels are drawn in Chinese only when a font that covers every character of them
is installed (found through ``matplotlib.font_manager``; on Debian: ``fonts-noto-cjk``),
and otherwise as node codes (B1, G2 …) with English words, never as boxes.
"""

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import FT2Font

from models.summary import ChartBar

# Families known to cover Simplified Chinese, preferred first.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Serif CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "AR PL UMing CN",
)
COLOURS = {"reported": "#2e7d32", "nobody_home": "#9e9e9e", "missing": "#c62828"}


@dataclass(frozen=True)
class ChartWords:
    title: str
    reported: str
    nobody_home: str
    missing: str
    axis: str

    def text(self) -> str:
        return self.title + self.reported + self.nobody_home + self.missing + self.axis


@dataclass(frozen=True)
class DrawnChart:
    png: bytes
    # The bars are labelled by their codes (no font for their names was found).
    codes: bool


@cache
def cjk_font_paths() -> tuple[str, ...]:
    """Installed fonts of the known CJK families, preferred first."""
    rank = {family: index for index, family in enumerate(CJK_FAMILIES)}
    found = [
        # Regular weight and upright style first: a bold title font is not wanted everywhere.
        (rank[entry.name], abs(_weight(entry.weight) - 400), entry.style != "normal", entry.fname)
        for entry in font_manager.fontManager.ttflist
        if entry.name in rank
    ]
    return tuple(dict.fromkeys(path for *_, path in sorted(found)))


def _weight(weight: int | str) -> int:
    return weight if isinstance(weight, int) else font_manager.weight_dict.get(weight, 400)


def font_covering(text: str, candidates: Sequence[str]) -> str | None:
    """The first font of ``candidates`` with a glyph for every character of ``text``."""
    needed = {character for character in text if not character.isspace()}
    for path in candidates:
        try:
            font = FT2Font(path)
        except (OSError, RuntimeError):
            continue
        if all(font.get_char_index(ord(character)) for character in needed):
            return path
    return None


def draw_chart(
    bars: Sequence[ChartBar],
    words: ChartWords,
    ascii_words: ChartWords,
    fonts: Sequence[str] | None = None,
) -> DrawnChart:
    """A PNG of ``bars``: labelled with their names and ``words`` when a font of ``fonts``
    (default: the CJK fonts installed) covers them, or when they are plain ASCII; else
    with their codes and ``ascii_words``."""
    text = words.text() + "".join(bar.name for bar in bars)
    if text.isascii():
        return DrawnChart(_draw(bars, words, None, codes=False), codes=False)
    path = font_covering(text, cjk_font_paths() if fonts is None else fonts)
    if path is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            png = _draw(bars, words, FontProperties(fname=path), codes=False)
        if not any("missing from font" in str(warning.message) for warning in caught):
            return DrawnChart(png, codes=False)
    return DrawnChart(_draw(bars, ascii_words, None, codes=True), codes=True)


def _draw(
    bars: Sequence[ChartBar], words: ChartWords, font: FontProperties | None, *, codes: bool
) -> bytes:
    figure = Figure(figsize=(8, max(3.0, 0.32 * len(bars) + 1.6)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(bars)))
    reported = [bar.reported for bar in bars]
    nobody_home = [bar.nobody_home for bar in bars]
    missing = [bar.missing for bar in bars]
    axes.barh(positions, reported, color=COLOURS["reported"], label=words.reported)
    axes.barh(
        positions,
        nobody_home,
        left=reported,
        color=COLOURS["nobody_home"],
        label=words.nobody_home,
    )
    axes.barh(
        positions,
        missing,
        left=[done + away for done, away in zip(reported, nobody_home, strict=True)],
        color=COLOURS["missing"],
        label=words.missing,
    )
    labels = [bar.code if codes else bar.name for bar in bars]
    axes.set_yticks(positions, labels, fontproperties=font)
    axes.invert_yaxis()
    widest = max((bar.total for bar in bars), default=0)
    for position, bar in zip(positions, bars, strict=True):
        share = 100 * (bar.reported + bar.nobody_home) // bar.total if bar.total else 100
        axes.text(bar.total + widest * 0.01, position, f"{share}%", va="center", fontsize=8)
    axes.set_xlim(0, max(1, widest) * 1.12)
    axes.set_xlabel(words.axis, fontproperties=font)
    axes.set_title(words.title, fontproperties=font)
    axes.legend(prop=font, loc="lower right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
