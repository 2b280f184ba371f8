"""Layering: rnn_model is a pure library; tasks/ wrap it for Prefect; flows/ compose tasks.

Checked statically with ``ast`` (nothing is imported), so the rule holds even for code paths that tests do
not execute, such as imports inside functions.

Flows import only tasks, params and config (issue 14): every module under ``flows/`` except the two in
:data:`FLOWS_FRONT_END` imports from ``rnn_model`` only ``rnn_model.config`` (``ForecastConfig``, the config
types) and ``rnn_model.errors`` (exception types); library logic a flow needs is behind ``tasks/`` (a task,
or a plain function a tasks module exports). Imports under ``if TYPE_CHECKING:`` are not counted: they
never run and only name types for annotations. Covered: ``train``, ``predict``, ``pipeline``,
``backtest``, ``partitioned``, ``runners`` and ``__init__``. Not covered:

- ``cli.py``, the console front end: it checks arguments and writes the sample data before Prefect (and
  so any tasks module) is imported, to fail or finish fast, with ``rnn_model``'s pure checks;
- ``params.py``, the flow parameters' pydantic validators: they run before any task can (also for
  deployment runs) and are imported by the CLI before Prefect, so they call ``rnn_model``'s pure
  validators (``check_name``, ``as_of_label``) directly.

Private Keras/TensorFlow modules (``keras.src``, ``tensorflow.python``, ``tensorflow.compiler``: the
multi-worker workarounds and internals) are imported only by ``rnn_model/distribute.py``.
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


def dotted_imports(path: Path) -> set[str]:
    """Dotted names of the modules imported anywhere in ``path`` (``from pkg import x`` counts as ``pkg.x``
    for a top-level ``pkg``; relative imports left out), except under ``if TYPE_CHECKING:``."""

    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if "." in node.module:
                found.add(node.module)
            else:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def rnn_model_imports(path: Path) -> set[str]:
    """The ``rnn_model`` modules that ``path`` imports (outside ``if TYPE_CHECKING:``)."""
    return {n for n in dotted_imports(path) if n == "rnn_model" or n.startswith("rnn_model.")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


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
    assert {"config", "panel", "windowing", "training", "prediction", "bundle", "registry", "store"} <= names


@pytest.mark.parametrize("path", modules_of("rnn_model"), ids=lambda p: p.name)
def test_rnn_model_never_imports_prefect_tasks_or_flows(path):
    bad = imported_modules(path, "rnn_model") & {"prefect", "tasks", "flows", "deployments"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: rnn_model must stay a pure library"


@pytest.mark.parametrize("path", modules_of("tasks"), ids=lambda p: p.name)
def test_tasks_never_import_flows_or_deployments(path):
    bad = imported_modules(path, "tasks") & {"flows", "deployments"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: tasks wrap rnn_model, flows compose tasks"


# flows/ modules that may use rnn_model beyond config and errors, and why (see the module docstring)
FLOWS_FRONT_END = {
    "cli.py": "the console front end: fast checks and the sample data before Prefect is imported",
    "params.py": "pydantic validators of the flow parameters: they run before any task can",
}
FLOWS_MAY_IMPORT = {"rnn_model.config", "rnn_model.errors"}


def test_the_flow_rule_sees_rnn_model_imports_but_not_type_checking_ones(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "import rnn_model.io\nfrom rnn_model import panel\nfrom rnn_model.config import ForecastConfig\n"
        "from tasks.data import load_table\nfrom . import params\n"
        "if TYPE_CHECKING:\n    from rnn_model.bundle import Bundle\nelse:\n    import rnn_model.gate\n"
        "if typing.TYPE_CHECKING:\n    import rnn_model.schema\n"
        "def late():\n    from rnn_model.stages import same_validation\n    importlib.import_module('rnn_model.outputs')\n"
    )
    assert rnn_model_imports(f) == {
        "rnn_model.io",
        "rnn_model.panel",
        "rnn_model.config",
        "rnn_model.gate",
        "rnn_model.stages",
        "rnn_model.outputs",
    }


def test_the_flow_front_end_modules_exist():
    assert set(FLOWS_FRONT_END) <= {p.name for p in modules_of("flows")}


@pytest.mark.parametrize(
    "path", [p for p in modules_of("flows") if p.name not in FLOWS_FRONT_END], ids=lambda p: p.name
)
def test_flows_import_from_rnn_model_only_config_and_errors(path):
    bad = rnn_model_imports(path) - FLOWS_MAY_IMPORT
    assert not bad, (
        f"{path.relative_to(ROOT)} imports {sorted(bad)}: flows import only tasks, params and config "
        "(rnn_model.config, rnn_model.errors); put the library call behind tasks/"
    )


# Private Keras/TensorFlow modules (monkeypatches, internals): in one place, next to the strategies they serve
PRIVATE_APIS = ("keras.src", "tensorflow.python", "tensorflow.compiler")


@pytest.mark.parametrize(
    "path",
    [p for pkg in ("rnn_model", "tasks", "flows", "deployments") for p in modules_of(pkg)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_private_keras_and_tensorflow_apis_only_in_distribute(path):
    if path == ROOT / "rnn_model" / "distribute.py":
        return
    bad = sorted(n for n in dotted_imports(path) if n.startswith(PRIVATE_APIS))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: workarounds of private Keras/TF APIs go to distribute.py"
