"""The package's layers, read from the source with `ast` (issue 23): no feature reaches up.

Features, lowest first: accounts, jobs, media, stories, transcripts, redaction, themes,
library, packs. A lower feature never imports a higher one, at module level or inside a
function; a higher one listens to the lower one's signals instead. The shared core imports no
feature. The app's own modules (the factory, the CLI, backup, demo, ...) may import anything.

Imports inside functions hide these loops, so each one of a storyhub module says why it is
there, in a comment on its line or the line above: `# cycle: ...` (importing at the top would
make a circular import) or `# cost: ...` (loading it at start-up would cost time or memory).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database

PACKAGE = Path(__file__).resolve().parents[2] / "storyhub"

#: The features, lowest first.
FEATURES = ["accounts", "jobs", "media", "stories", "transcripts", "redaction", "themes",
            "library", "packs"]
#: Shared modules that know no feature.
CORE = {"audit", "bundled_models", "config", "database", "dates", "extensions", "keys", "logs",
        "sealed", "signals", "storage", "supervisor", "upgrades"}
#: The access policy and its web helpers speak of roles and consent scopes, which accounts
#: and stories define, and every feature from stories up checks them: they sit beside stories.
WITH_STORIES = {"policy", "security", "web"}
#: The app itself: the factory, its commands and the pages that show many features at once.
APP = {"__init__", "__main__", "admin", "backup", "cli", "demo", "evaluation", "home",
       "migrations", "worker"}

LAYER = {name: 0 for name in CORE}
LAYER.update({name: 1 + i for i, name in enumerate(FEATURES)})
LAYER.update({name: LAYER["stories"] for name in WITH_STORIES})
LAYER.update({name: 100 for name in APP})

#: Function-level imports of storyhub modules; each says why (see above). 116 when this test
#: was written; 2 now, both the app factory imported by modules the factory itself imports.
MAX_FUNCTION_LEVEL = 2

REASON = re.compile(r"#\s*(cycle|cost):\s*\S")


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    source: str  # the importing module's top-level name under storyhub ("stories", "__init__")
    target: str  # the imported module's top-level name
    in_function: bool
    has_reason: bool


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _top(module: list[str]) -> str:
    return module[1] if len(module) > 1 else "__init__"


def _is_module(module: list[str]) -> bool:
    path = PACKAGE.parent.joinpath(*module)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _targets(node: ast.Import | ast.ImportFrom, path: Path) -> list[list[str]]:
    """Return the storyhub modules an import statement loads, as lists of names."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".") for alias in node.names
                if alias.name.split(".")[0] == "storyhub"]
    if node.level:
        package = _module(path) if path.name == "__init__.py" else _module(path)[:-1]
        base = package[:len(package) - (node.level - 1)]
    else:
        base = []
    base = base + (node.module.split(".") if node.module else [])
    if not base or base[0] != "storyhub":
        return []
    # `from . import signals` loads storyhub.signals; `from . import create_app`, storyhub.
    return [base + [alias.name] if _is_module(base + [alias.name]) else base
            for alias in node.names]


def _reasons(source: str) -> set[int]:
    """Return the lines that hold a `# cycle:` or `# cost:` comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens
            if token.type == tokenize.COMMENT and REASON.match(token.string)}


def imports() -> list[Import]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "versions" in path.relative_to(PACKAGE).parts:
            continue  # migrations are frozen history: they import no storyhub module
        source = path.read_text(encoding="utf-8")
        reasons = _reasons(source)

        def visit(node: ast.AST, in_function: bool, path: Path = path,
                  reasons: set[int] = reasons) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Import | ast.ImportFrom):
                    lines = set(range(child.lineno - 1, (child.end_lineno or child.lineno) + 1))
                    for target in _targets(child, path):
                        found.append(Import(path, child.lineno, _top(_module(path)),
                                            _top(target), in_function, bool(lines & reasons)))
                visit(child, in_function
                      or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

        visit(ast.parse(source, str(path)), False)
    return found


def statements(found: list[Import]) -> set[tuple[Path, int]]:
    """Count import statements, not names: `from . import a, b` is one."""
    return {(i.path, i.line) for i in found}


def where(i: Import) -> str:
    return f"{i.path.relative_to(PACKAGE.parent)}:{i.line}"


def test_every_module_has_a_layer():
    tops = {_top(_module(path)) for path in PACKAGE.rglob("*.py")}
    assert sorted(tops - set(LAYER)) == [], "add the new module to a layer in this test"


def test_no_feature_imports_a_higher_one():
    upward = [f"{where(i)}: {i.source} imports {i.target}" for i in imports()
              if i.source != i.target and LAYER[i.target] > LAYER[i.source]]
    assert upward == []


def test_function_level_imports_say_why():
    inside = [i for i in imports() if i.in_function]
    assert [where(i) for i in inside if not i.has_reason] == []
    assert len(statements(inside)) <= MAX_FUNCTION_LEVEL
