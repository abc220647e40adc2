"""No package imports one above it (DESIGN.md, "Layering").

Every import statement in the packages is read with :mod:`ast` — including
imports inside functions and under ``TYPE_CHECKING`` — and checked against
the table of allowed edges.  The front ends (the CLI modules, the run
builder, the TUI) sit on top; nothing below may import them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sandbox", "policies", "audit", "agent", "tui")

# Which packages each package may import (itself included).
ALLOWED: dict[str, set[str]] = {
    "sandbox": {"sandbox"},
    "policies": {"policies", "sandbox"},
    "audit": {"audit", "policies", "sandbox"},
    "agent": {"agent", "audit", "policies", "sandbox"},
    "tui": {"tui", "agent", "audit", "policies", "sandbox"},
}

# Modules of ``agent`` that are front ends or wiring: only front ends import them.
FRONT_END_PREFIXES = ("agent.cli", "agent.runs", "agent.registry", "agent.__main__",
                      "agent.suites", "agent.mcp", "tui")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_front_end(module: str) -> bool:
    return module.endswith(".cli") or module.startswith(FRONT_END_PREFIXES)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def package_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _in_executor(module: str) -> bool:
    return module == "sandbox.executor" or module.startswith("sandbox.executor.")


def violations(path: Path, root: Path = ROOT) -> list[str]:
    here = module_name(path, root)
    package = here.split(".")[0]
    problems = []
    for line, target in imported_modules(path):
        where = f"{path.relative_to(root)}:{line} imports {target}"
        if target.split(".")[0] not in ALLOWED[package]:
            problems.append(f"{where}: {package}/ may not import from above it")
        elif is_front_end(target) and not is_front_end(here):
            problems.append(f"{where}: only front ends import the wiring")
        elif _in_executor(here) and not _in_executor(target):
            problems.append(f"{where}: the executor must stay self-contained in the sandbox")
    return problems


def test_the_packages_are_found() -> None:
    names = {module_name(p) for p in package_files()}
    assert {"sandbox.actions", "policies.engine", "audit.log", "agent.loop", "tui.app"} <= names


def test_no_package_imports_one_above_it() -> None:
    problems = [problem for path in package_files() for problem in violations(path)]
    assert problems == []


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("audit/bad.py", "from agent.loop import AgentLoop\n", "audit/ may not import from above it"),
    ("policies/bad.py", "import tui.app\n", "policies/ may not import from above it"),
    ("agent/loop.py", "def f():\n    from agent.runs import plan_run\n",
     "only front ends import the wiring"),
    ("sandbox/executor/x.py", "from sandbox.base import Frame\n", "self-contained"),
])
def test_a_forbidden_import_is_caught(tmp_path: Path, module: str, source: str,
                                      expected: str) -> None:
    bad = tmp_path / module
    bad.parent.mkdir(parents=True)
    bad.write_text(source, encoding="utf-8")
    (problem,) = violations(bad, root=tmp_path)
    assert expected in problem
