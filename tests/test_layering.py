"""The pure parts import nothing of the I/O parts (STYLE §1)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ambulink"
PURE = ("signal", "protocol")
FORBIDDEN_STDLIB = {"asyncio", "time", "socket", "threading", "subprocess"}
ALLOWED_AMBULINK = {"ambulink.errors"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("." * node.level + (node.module or ""))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("part", PURE)
def test_pure_parts_import_only_themselves_errors_and_numerics(part: str) -> None:
    modules = sorted((PACKAGE / part).rglob("*.py"))
    least = {"signal": 8, "protocol": 3}[part]
    assert len(modules) >= least, (
        f"found too few {part} modules under {PACKAGE}: is the path right?"
    )
    for path in modules:
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert not name.startswith("."), f"{path.name}: relative import {name}"
            assert top not in FORBIDDEN_STDLIB, f"{path.name} imports {name}: no I/O or clock here"
            if top == "ambulink":
                assert name.startswith(f"ambulink.{part}") or name in ALLOWED_AMBULINK, (
                    f"{path.name} imports {name}: {part} may import only itself and errors"
                )
