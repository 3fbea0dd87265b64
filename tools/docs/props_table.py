"""The construct's props as the docs show them, read from ``service.py`` without importing it.

The API reference's props table is generated from this at build time (``docs/hooks.py``), so it
cannot drift from the code; ``tests/docs/test_props_reference.py`` holds the parse to the real
signature (``inspect``) and every prop to its documented default.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "constructs" / "gunicorn_alb" / "service.py"
CLASS_NAME = "ApplicationLoadBalancedGunicornService"
PLACEHOLDER = "<!-- props-table -->"
_PARAM = re.compile(r"^:param (\w+):(.*)$")


@dataclass(frozen=True)
class Prop:
    """One keyword-only prop: its annotation and default in the signature, and its docstring."""

    name: str
    annotation: str
    signature_default: str | None  # None: required
    description: str
    default: str | None  # the docstring's "Default: - ..." text; None when it has none


def _docstring_params(docstring: str) -> dict[str, str]:
    params: dict[str, str] = {}
    current: str | None = None
    for line in docstring.splitlines():
        stripped = line.strip()
        match = _PARAM.match(stripped)
        if match:
            current = match.group(1)
            params[current] = match.group(2).strip()
        elif current is not None and stripped and line.startswith((" ", "\t")):
            params[current] += " " + stripped
        else:
            current = None
    return params


def _split_default(text: str) -> tuple[str, str | None]:
    head, sep, tail = text.partition("Default:")
    if not sep:
        return text.strip(), None
    return head.strip(), tail.strip().removeprefix("-").strip()


def read_props(source: Path = SERVICE) -> list[Prop]:
    """The keyword-only props of the construct, in signature order."""
    tree = ast.parse(source.read_text())
    cls = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == CLASS_NAME
    )
    params = _docstring_params(ast.get_docstring(cls) or "")
    init = next(
        node for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    )
    props = []
    for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True):
        description, documented = _split_default(params.get(arg.arg, ""))
        props.append(
            Prop(
                name=arg.arg,
                annotation=ast.unparse(arg.annotation) if arg.annotation else "",
                signature_default=None if default is None else ast.unparse(default),
                description=description,
                default=documented,
            )
        )
    return props


_ROLE = re.compile(r":(?:mod|class|func|meth|attr):`~?([^`]+)`")


def _cell(text: str) -> str:
    """reST inline markup as Markdown, pipes escaped for a table cell."""
    text = _ROLE.sub(r"`\1`", text).replace("``", "`")
    return text.replace("|", "\\|")


def markdown_table(props: list[Prop]) -> str:
    """The props table of the API reference (Markdown)."""
    rows = [
        "| prop | type | default | what it is |",
        "|---|---|---|---|",
    ]
    for prop in props:
        default = "(required)" if prop.signature_default is None else (prop.default or "")
        kinds = " or ".join(f"`{kind}`" for kind in prop.annotation.split(" | "))
        rows.append(f"| `{prop.name}` | {kinds} | {_cell(default)} | {_cell(prop.description)} |")
    return "\n".join(rows) + "\n"
