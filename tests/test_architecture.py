"""The shape of the code: layers that only point down (import-linter's contracts in pyproject.toml), no import
cycle between the engine's modules, and pages that stay thin."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold() -> None:
    # A broken contract prints which import breaks which layer.
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_in_the_engine() -> None:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("engine")
    assert len(graph.modules) > 100  # the whole engine was read
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def app_files() -> list[Path]:
    return [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]


def test_pages_are_thin() -> None:
    pages = [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py"))]
    assert len(pages) == 8
    assert {p.name: n for p in pages if (n := len(p.read_text().splitlines())) > 85} == {}


def test_the_app_starts_jobs_from_typed_specs_and_shows_them_in_one_panel() -> None:
    texts = {p.relative_to(ROOT).as_posix(): p.read_text() for p in app_files()}
    assert [name for name, text in texts.items() if "start_job(" in text] == []
    watching = [name for name, text in texts.items() if "tail_log(" in text or "cancel_job(" in text]
    assert watching == ["ui/job_panel.py"]


def test_every_engine_module_is_in_a_layer() -> None:
    import tomllib

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][1]["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    children = {f"engine.{p.stem}" for p in (ROOT / "engine").iterdir() if p.suffix == ".py" and p.stem != "__init__"}
    children |= {f"engine.{p.name}" for p in (ROOT / "engine").iterdir() if (p / "__init__.py").is_file()}
    assert children - placed == set()
