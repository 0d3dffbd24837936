"""The house rules, checked on every change by reading the imports (an AST walk, nothing imported):
index/ (writes) imports nothing above it; qa/'s library imports no front end; no import cycles;
every exception class the project defines derives from index.errors.PolicyQAError."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FRONT_ENDS = {"app", "qa.cli", "eval"}  # eval/ as a whole: the harness and benchmarks sit on top


def modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in ("index", "qa", "eval"):
        for path in sorted((ROOT / package).glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


MODULES = modules()


def imports_of(path: Path, name: str) -> set[str]:
    """Project modules `path` imports anywhere in its body (function-level imports included)."""
    out = set()
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: imports_of(path, name) for name, path in MODULES.items()}


def is_front_end(module: str) -> bool:
    return module in FRONT_ENDS or module.startswith("eval.")


def test_the_walk_sees_imports():
    # guards the guard: a walk that found nothing would pass every rule below
    assert "index.store" in GRAPH["qa.engine"] and "qa.engine" in GRAPH["qa.service"] and "app" in GRAPH["qa.cli"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] == "index"))
def test_index_imports_nothing_above_it(module):
    above = sorted(m for m in GRAPH[module] if m.split(".")[0] != "index")
    assert not above, f"{module} (the writing side) imports {above}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] == "qa" and not is_front_end(m)))
def test_qa_library_imports_no_front_end(module):
    front = sorted(m for m in GRAPH[module] if is_front_end(m))
    assert not front, f"{module} (the library) imports the front end(s) {front}"


def test_no_import_cycles():
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_project_error_derives_from_the_root():
    """Each exception class defined in the project's modules has PolicyQAError among its bases' roots."""
    classes: dict[str, list[str]] = {}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]

    def rooted(name: str, seen=()) -> bool:
        if name == "PolicyQAError":
            return True
        return any(b in classes and b not in seen and rooted(b, (*seen, name)) for b in classes.get(name, ()))

    errors = [n for n, bases in classes.items() if n.endswith("Error") or any(b in ("Exception", "ValueError", "RuntimeError") for b in bases)]
    assert "QuestionError" in errors and "IndexBusyError" in errors
    stray = sorted(n for n in errors if not rooted(n))
    assert not stray, f"errors outside the PolicyQAError root: {stray}"
