"""Layering: rnn_model is a pure library; tasks/ wrap it for Prefect; flows/ compose tasks.

Checked statically with ``ast`` (nothing is imported), so the rule holds even for code paths that tests do
not execute, such as imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path, package: str) -> set[str]:
    """Top-level names of every module imported anywhere in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the (top-level) package itself
                found.add(package)
            else:
                found.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value.split(".")[0])
    return found


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_checker_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "rnn_model"
    pkg.mkdir()
    f = pkg / "m.py"
    f.write_text(
        "import os.path\nfrom prefect import flow\nfrom . import config\nfrom .io import x\n"
        "def late():\n    import tasks.data\n    importlib.import_module('flows.train')\n"
    )
    assert imported_modules(f, "rnn_model") == {"os", "prefect", "rnn_model", "tasks", "flows"}


def test_rnn_model_has_modules_to_check():
    names = {p.stem for p in modules_of("rnn_model")}
    assert {"config", "panel", "windowing", "training", "prediction", "bundle", "registry"} <= names


@pytest.mark.parametrize("path", modules_of("rnn_model"), ids=lambda p: p.name)
def test_rnn_model_never_imports_prefect_tasks_or_flows(path):
    bad = imported_modules(path, "rnn_model") & {"prefect", "tasks", "flows", "deployments"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: rnn_model must stay a pure library"


@pytest.mark.parametrize("path", modules_of("tasks"), ids=lambda p: p.name)
def test_tasks_never_import_flows_or_deployments(path):
    bad = imported_modules(path, "tasks") & {"flows", "deployments"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: tasks wrap rnn_model, flows compose tasks"
