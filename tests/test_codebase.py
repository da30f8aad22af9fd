"""Checks on the repository itself: documented settings, module size, no import-time work."""

from __future__ import annotations

import ast
from pathlib import Path

from agenthost.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "agenthost"
MAX_MODULE_LINES = 450


def test_every_setting_is_documented_and_in_env_example() -> None:
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        variable = f"AGENTHOST_{name.upper()}"
        assert f"`{variable}`" in configuration, f"{variable} missing from docs/configuration.md"
        assert f"{variable}=" in example, f"{variable} missing from .env.example"


def test_modules_stay_small() -> None:
    for module in SOURCE.rglob("*.py"):
        lines = len(module.read_text().splitlines())
        assert lines <= MAX_MODULE_LINES, f"{module.relative_to(ROOT)} has {lines} lines"


def test_every_module_opens_with_a_docstring() -> None:
    for module in SOURCE.rglob("*.py"):
        if module.name == "__init__.py" and not module.read_text().strip():
            continue
        tree = ast.parse(module.read_text())
        assert ast.get_docstring(tree), f"{module.relative_to(ROOT)} has no module docstring"


def test_settings_are_never_built_at_import_time() -> None:
    for module in SOURCE.rglob("*.py"):
        tree = ast.parse(module.read_text())
        for node in tree.body:
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            names = {c.func.id for c in calls if isinstance(c.func, ast.Name)}
            assert "Settings" not in names, f"{module.relative_to(ROOT)} builds Settings at import"
