"""The packages keep to their layers: the domain knows no Telegram library, and the
Telegram side and the clock reach each other only through the domain's interfaces."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (package, what it must never import)
FORBIDDEN = [
    ("models", "aiogram"),
    ("handlers", "scheduler"),
    ("scheduler", "handlers"),
]


def imported_modules(source: str) -> set[str]:
    """Every absolute module an ``import`` or ``from … import`` names, wherever it stands
    (inside a function, under ``if TYPE_CHECKING:``)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def offenders(package: Path, forbidden: str) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for module in sorted(imported_modules(path.read_text(encoding="utf-8"))):
            if module == forbidden or module.startswith(forbidden + "."):
                found.append(f"{path.relative_to(package.parent)} imports {module}")
    return found


@pytest.mark.parametrize(("package", "forbidden"), FORBIDDEN)
def test_a_package_does_not_import_across_its_layer(package: str, forbidden: str) -> None:
    assert list((ROOT / package).rglob("*.py")), f"{package}/ has no modules to check"
    assert offenders(ROOT / package, forbidden) == []


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    package = tmp_path / "models"
    (package / "outbox").mkdir(parents=True)
    (package / "plain.py").write_text("import aiogram\n", encoding="utf-8")
    (package / "outbox" / "nested.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from aiogram.types import Message\n"
        "def later():\n"
        "    import aiogram.methods as methods\n",
        encoding="utf-8",
    )
    (package / "fine.py").write_text(
        "import aiogramish\nfrom . import plain\n'''import aiogram'''\n", encoding="utf-8"
    )
    assert offenders(package, "aiogram") == [
        "models/outbox/nested.py imports aiogram.methods",
        "models/outbox/nested.py imports aiogram.types",
        "models/plain.py imports aiogram",
    ]
