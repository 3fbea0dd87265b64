"""The package has no import circles: no module imports, even for type checking only, a module
that imports it back (directly or through others). Imports inside functions (the package's lazy
``__getattr__``) do not count."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = "gunicorn_alb"


def _imports(path: Path, package_dir: Path) -> set[str]:
    """The package's modules that ``path`` imports at module level (TYPE_CHECKING included)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    statements = list(tree.body)
    while statements:
        statement = statements.pop()
        if isinstance(statement, ast.If | ast.Try):
            statements += statement.body + statement.orelse
            continue
        if isinstance(statement, ast.Import):
            names.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
            names.add(statement.module)
            names.update(f"{statement.module}.{alias.name}" for alias in statement.names)
    modules = {
        ".".join((PACKAGE, *p.relative_to(package_dir).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for p in package_dir.rglob("*.py")
    }
    return {name for name in names if name in modules and name != PACKAGE}


def test_no_module_imports_one_that_imports_it_back(root: Path) -> None:
    package_dir = root / "constructs" / PACKAGE
    graph: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        name = ".".join((PACKAGE, *path.relative_to(package_dir).with_suffix("").parts))
        graph[name.removesuffix(".__init__")] = _imports(path, package_dir)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for child in graph.get(node, ()):
                if child == goal:
                    return True
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return False

    circles = sorted(
        f"{module} -> {imported}"
        for module, imported_set in graph.items()
        for imported in imported_set
        if reaches(imported, module)
    )
    assert circles == []


def test_alarm_thresholds_are_exported_without_loading_aws_cdk(root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gunicorn_alb import AlarmThresholds; "
            "print(AlarmThresholds.__module__, 'aws_cdk' in sys.modules)",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.split() == ["gunicorn_alb.alarms", "False"], result.stderr
