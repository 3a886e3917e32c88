"""The package's layering, checked: no two files of src/tlgan import each other in a loop, and the
command line reaches the library only through ``tlgan.jobs`` (and the error base).

Every import counts, wherever it stands (top level, in a function, under TYPE_CHECKING): each is a
dependency a reader follows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tlgan"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = ("tlgan", *path.relative_to(package).with_suffix("").parts)
    return ".".join(parts).removesuffix(".__init__")


def imported_modules(path: Path, package_dir: Path = PACKAGE) -> set[str]:
    """The tlgan modules (dotted names, as written or resolved from relative imports) ``path`` imports."""
    here = module_name(path, package_dir)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m == "tlgan" or m.startswith("tlgan.")}


def import_graph(package: Path = PACKAGE) -> nx.DiGraph:
    """Files of ``package`` as nodes, an edge where one imports another."""
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        for mod in imported_modules(path, package):
            while mod and mod not in files:  # `from .pkg import thing`: the file that defines it
                mod = mod.rpartition(".")[0]
            if mod and mod != name and not is_namespace_only(files[mod]):
                graph.add_edge(name, mod)
    return graph


def is_namespace_only(path: Path) -> bool:
    """A package ``__init__`` that only names its parts (no code of its own) links nothing."""
    text = path.read_text()
    return path.name == "__init__.py" and "def " not in text and "class " not in text


def test_no_two_files_import_each_other_in_a_loop() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_command_line_reaches_the_library_only_through_jobs() -> None:
    allowed = {"tlgan", "tlgan.jobs", "tlgan.errors"}
    used = {m for m in imported_modules(PACKAGE / "cli.py")}
    assert used <= allowed | {f"tlgan.{n}" for n in ("__version__",)} | {
        m for m in used if m.startswith(("tlgan.jobs.", "tlgan.errors."))}, sorted(used - allowed)


def test_the_walk_finds_a_cycle_when_there_is_one(tmp_path: Path) -> None:
    """The check itself can fail: two toy modules that import each other are reported."""
    pkg = tmp_path / "tlgan"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import g\ndef f():\n    return g\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n    return f\n")
    cycles = [c for c in nx.strongly_connected_components(import_graph(pkg)) if len(c) > 1]
    assert cycles == [{"tlgan.a", "tlgan.b"}]
