"""The architecture as a checked contract (docs/architecture.md).

Data flows one way: a change is applied to the world once (world/), the journal records what was
applied (journal/), the model cache hears which columns are dirty and the solver reads world
columns (solver_cy/), replay builds worlds from snapshots plus recorded changes (replay/), and the
face (gridtape/) ties them together for users.  This test reads every source file of the tree
(Python by its syntax tree, Cython by its import lines, imports inside functions included) and
fails on an import that crosses a layer the wrong way, or on a write into a table's columns
outside the change vocabulary.  ``test_contract_catches_a_violation`` shows that it fails.
It also holds every module (.py, .pyx, .pxi) to at most MAX_LINES lines: rooms of one concern.
"""
from __future__ import annotations

import ast
import os
import re
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: source folder -> installed package (pyproject.toml's package-dir)
FOLDERS = {"gridtape": "gridtape", "world": "gridtape.world", "solver_cy": "gridtape.solver_cy",
           "journal": "gridtape.journal", "replay": "gridtape.replay"}

#: the layers a module may never import, by the layer it belongs to.  "face" is every module of
#: gridtape/ itself except gridtape.errors (shared by all) and the package root (its version).
FORBIDDEN = {
    "errors": {"world", "solver_cy", "journal", "replay", "face"},
    "world": {"solver_cy", "journal", "replay", "face"},
    "solver_cy": {"journal", "replay", "face"},
    "journal": {"solver_cy", "replay", "face"},
    "replay": {"face"},
    "face": set(),
}

#: the only modules that may write a table's columns (``t.cols[name][rows] = ...``)
COLUMN_WRITERS = {"gridtape.world.changes", "gridtape.world.world"}


def layer(module: str) -> str | None:
    """The layer of an installed module name (None: not gridtape's)."""
    parts = module.split(".")
    if parts[0] != "gridtape":
        return None
    if len(parts) == 1 or parts[1] == "__version__":
        return "root"
    if parts[1] == "errors":
        return "errors"
    if parts[1] in ("world", "solver_cy", "journal", "replay"):
        return parts[1]
    return "face"


_PYX_IMPORT = re.compile(r"^\s*(?:from\s+([.\w]+)\s+c?import\s+([\w, ()*]+)|c?import\s+([.\w]+))", re.M)


def _resolve(module: str, is_pkg: bool, name: str, level: int) -> str:
    if not level:
        return name
    base = module.split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(path: str, module: str):
    """(candidate module names, line) for every import statement of a source file, relative ones
    resolved (``from gridtape import grid`` names both ``gridtape`` and ``gridtape.grid``)."""
    is_pkg = os.path.basename(path).startswith("__init__.")
    src = open(path, encoding="utf-8").read()
    out = []
    if path.endswith(".py"):
        for node in ast.walk(ast.parse(src, path)):
            if isinstance(node, ast.Import):
                out += [([a.name], node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_pkg, node.module or "", node.level)
                out.append(([base] + [f"{base}.{a.name}" for a in node.names if a.name != "*"], node.lineno))
    else:
        for m in _PYX_IMPORT.finditer(src):
            line = src.count("\n", 0, m.start()) + 1
            name = m.group(1) or m.group(3)
            level = len(name) - len(name.lstrip("."))
            out.append(([_resolve(module, is_pkg, name.lstrip("."), level)], line))
    return out


def column_writes(path: str):
    """Lines that assign into ``<expr>.cols[...]`` (or replace ``<expr>.cols``)."""
    if not path.endswith(".py"):
        return []
    bad = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        for t in targets:
            while isinstance(t, ast.Subscript):
                t = t.value
                if isinstance(t, ast.Attribute) and t.attr == "cols":
                    bad.append(node.lineno)
                    break
    return bad


def source_files(root: str):
    for folder, package in FOLDERS.items():
        top = os.path.join(root, folder)
        for dirpath, dirnames, files in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            for f in sorted(files):
                if f.endswith((".py", ".pyx", ".pxd")):
                    rel = os.path.relpath(os.path.join(dirpath, f), top)
                    mod = rel.rsplit(".", 1)[0].replace(os.sep, ".")
                    mod = package if mod == "__init__" else f"{package}.{mod.removesuffix('.__init__')}"
                    yield os.path.join(dirpath, f), mod


def violations(root: str = ROOT) -> list[str]:
    out = []
    for path, module in source_files(root):
        own = layer(module)
        rel = os.path.relpath(path, root)
        for names, line in imports_of(path, module):
            for name in names:
                other = layer(name)
                if other and other in FORBIDDEN.get(own, set()):
                    out.append(f"{rel}:{line}: {own} layer imports {name} ({other} layer)")
                    break
        if module not in COLUMN_WRITERS:
            out += [f"{rel}:{line}: writes a table's columns outside the change vocabulary"
                    for line in column_writes(path)]
    return out


#: the longest a module may be (lines): split a longer one by concern (subfolders are fine)
MAX_LINES = 400


def oversized(root: str = ROOT) -> list[str]:
    """``path: N lines`` of every .py / .pyx / .pxi module of the tree longer than MAX_LINES."""
    out = []
    for folder in FOLDERS:
        for dirpath, dirnames, files in os.walk(os.path.join(root, folder)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            for f in sorted(files):
                if f.endswith((".py", ".pyx", ".pxi")):
                    path = os.path.join(dirpath, f)
                    with open(path, encoding="utf-8") as fh:
                        n = sum(1 for _ in fh)
                    if n > MAX_LINES:
                        out.append(f"{os.path.relpath(path, root)}: {n} lines")
    return out


def test_no_module_is_over_the_size_limit():
    found = oversized()
    assert not found, f"modules over {MAX_LINES} lines (split them by concern):\n" + "\n".join(found)


@pytest.mark.parametrize("name, lines, bad", [("big.py", MAX_LINES + 1, True), ("big.pxi", MAX_LINES + 1, True),
                                              ("ok.pyx", MAX_LINES, False)])
def test_size_limit_catches_a_long_module(tmp_path, name, lines, bad):
    for f in FOLDERS:
        (tmp_path / f).mkdir()
    (tmp_path / "journal" / name).write_text("x = 1\n" * lines)
    found = oversized(str(tmp_path))
    assert found == ([f"{os.path.join('journal', name)}: {lines} lines"] if bad else [])


def test_the_tree_keeps_the_contract():
    found = violations()
    assert not found, "architecture contract broken:\n" + "\n".join(found)


def test_every_layer_is_read():
    mods = {m for _, m in source_files(ROOT)}
    for package in FOLDERS.values():
        assert package in mods, package
        assert len([m for m in mods if m.startswith(package + ".")]) >= 2, package


@pytest.mark.parametrize("folder, source, expect", [
    ("world", "from gridtape.journal import Journal\n", "world layer imports gridtape.journal"),
    ("world", "def f():\n    from ..solver_cy import engine\n", "world layer imports gridtape.solver_cy"),
    ("solver_cy", "import gridtape.replay.study\n", "solver_cy layer imports gridtape.replay.study"),
    ("replay", "def at():\n    from gridtape.grid import PowerGrid\n", "replay layer imports gridtape.grid"),
    ("solver_cy", "from gridtape.journal cimport frames\n", "solver_cy layer imports gridtape.journal"),
    ("journal", "def w(t):\n    t.cols['p_mw'][0] = 1.0\n", "writes a table's columns"),
])
def test_contract_catches_a_violation(tmp_path, folder, source, expect):
    for f in FOLDERS:
        (tmp_path / f).mkdir()
        (tmp_path / f / "__init__.py").write_text("")
    ext = ".pyx" if "cimport" in source else ".py"
    (tmp_path / folder / f"bad{ext}").write_text(textwrap.dedent(source))
    found = violations(str(tmp_path))
    assert len(found) == 1 and expect in found[0], found
