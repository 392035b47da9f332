"""One public API pattern in the four packages and their subpackages: explicit re-exports and a sorted ``__all__``
of names that resolve."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "theory",
    "simulate",
    "empirical",
    "paper_checks",
]
SUBPACKAGES = [
    "theory.symbolic",
    "empirical.data",
    "empirical.models",
    "empirical.sweep",
    "paper_checks.claims",
]


@pytest.mark.parametrize("name", PACKAGES + SUBPACKAGES)
def test_all_is_sorted_and_every_name_resolves(name):
    pkg = importlib.import_module(name)
    assert list(pkg.__all__) == sorted(pkg.__all__), f"{name}.__all__ is not sorted"
    assert len(set(pkg.__all__)) == len(pkg.__all__), f"{name}.__all__ repeats a name"
    missing = [n for n in pkg.__all__ if not hasattr(pkg, n)]
    assert not missing, f"{name}.__all__ names what the package does not define: {missing}"


@pytest.mark.parametrize("name", ["simulate", "empirical", "paper_checks", *SUBPACKAGES])
def test_all_names_exactly_the_explicit_re_exports(name):
    """``__all__`` is the set of names of the ``from .x import a, b`` statements of ``__init__.py`` (empirical's
    under ``if TYPE_CHECKING:``, loaded on first use at run time)."""
    tree = ast.parse((ROOT / name.replace(".", "/") / "__init__.py").read_text())
    imported = {alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.level == 1 for alias in node.names}
    assert set(importlib.import_module(name).__all__) == imported


def test_empirical_lazy_table_matches_its_re_exports():
    import empirical

    assert sorted(empirical._EXPORTS) == empirical.__all__
    for public, module in empirical._EXPORTS.items():
        assert getattr(importlib.import_module(f"empirical.{module}"), public) is getattr(empirical, public)


def test_importing_empirical_and_paper_checks_imports_neither_torch_nor_jax():
    code = ("import sys, empirical, empirical.runs, paper_checks, paper_checks.__main__; "
            "print(sorted(m for m in ('torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
