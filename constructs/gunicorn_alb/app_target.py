"""Whether the app target names something the app's module defines, read statically (no CDK,
no import of the user's code, which may need packages the CDK app does not have).

Gunicorn imports ``module`` and takes ``name`` from it (``gunicorn.util.import_app``); a missing
name fails every instance's boot. This module reads the module's source with :mod:`ast`: the
names bound at its top level (assignments, ``def``, ``class``, imports, ``for``/``with``
targets, also inside ``if``/``try`` blocks), and what looks like an app among them, for the
message. What a static read cannot decide (``from x import *``, ``globals()``, a module-level
``__getattr__``, ``global name`` in a function, ``exec``) is an advisory, not a problem.
"""

from __future__ import annotations

import ast
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path

INSTANCE_PYTHON = (3, 12)
"""The instances' Python (Amazon Linux 2023's python3.12): syntax it accepts may not parse on
an older synth Python, so a syntax error there is only an advisory."""

APP_CONSTRUCTORS = {
    "Flask": "a Flask app",
    "Quart": "a Quart app",
    "FastAPI": "a FastAPI app",
    "Starlette": "a Starlette app",
    "Litestar": "a Litestar app",
    "Sanic": "a Sanic app",
    "Bottle": "a Bottle app",
    "default_app": "a Bottle app",
    "get_wsgi_application": "a Django WSGI app",
    "get_asgi_application": "a Django ASGI app",
    "make_wsgi_app": "a Pyramid app",
}
"""Calls whose result is an app: the last part of the called name (``Flask(...)``,
``flask.Flask(...)``)."""
FACTORY_NAMES = frozenset({"create_app", "make_app", "build_app", "app_factory", "get_app"})
NAMES_SHOWN = 8


@dataclass
class TargetReport:
    """What the check found: problems fail the synth, advisories warn."""

    problems: list[str] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)


@dataclass
class _Binding:
    """A top-level name: the statement that binds it (the last one wins for the kind)."""

    kind: str  # "def", "class", "import", "assign", "other"
    node: ast.AST | None = None
    looks_like: str | None = None


@dataclass
class _Module:
    bindings: dict[str, _Binding]
    undecidable: list[str]
    globals_in_functions: set[str]


def parse_target(target: str) -> tuple[str, str, ast.Call | None]:
    """``(module, name, call)`` of a target that passed ``app_config.check_app_target``
    (``module`` alone means ``module:application``, as Gunicorn reads it)."""
    module, _, obj = target.partition(":")
    if not obj:
        return module, "application", None
    expression = ast.parse(obj, mode="eval").body
    if isinstance(expression, ast.Call):
        assert isinstance(expression.func, ast.Name)
        return module, expression.func.id, expression
    assert isinstance(expression, ast.Name)
    return module, expression.id, None


def module_file(directory: Path, module: str) -> Path | None:
    """``pkg/sub.py`` or ``pkg/sub/__init__.py`` of ``pkg.sub`` in ``directory``, if any."""
    base = directory.joinpath(*module.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def check_target(argument: str, target: str, directory: Path) -> TargetReport:
    """Check that ``target`` (already a well-formed Gunicorn target) names a top-level name of
    its module in ``directory``, and a function when it is a factory call."""
    report = TargetReport()
    module, name, call = parse_target(target)
    path = module_file(directory, module)
    if path is None:
        return report  # the missing module is the caller's problem
    shown = path.relative_to(directory).as_posix()
    head = f"{argument} {target!r}: {shown}"
    try:
        tree = ast.parse(path.read_bytes(), filename=shown)
    except SyntaxError as error:
        where = f"{head} line {error.lineno}: {error.msg}"
        if sys.version_info >= INSTANCE_PYTHON:
            report.problems.append(f"{where}: Gunicorn cannot import it")
        else:
            version = ".".join(map(str, sys.version_info[:2]))
            report.advisories.append(
                f"{where} (on this Python {version}; the instances run "
                f"{'.'.join(map(str, INSTANCE_PYTHON))}): not checked"
            )
        return report
    except (ValueError, UnicodeDecodeError) as error:
        report.advisories.append(f"{head} could not be read ({error}): not checked")
        return report
    found = _read_module(tree)
    binding = found.bindings.get(name)
    if binding is None:
        if path.name == "__init__.py" and module_file(path.parent, name) is not None:
            report.advisories.append(
                f"{head} does not bind {name!r}; a submodule {name} exists, which is an "
                "attribute only once something imports it: not checked"
            )
        elif name in found.globals_in_functions or found.undecidable:
            why = found.undecidable or [f"a function sets it with 'global {name}'"]
            report.advisories.append(f"{head} binds no {name!r} visibly, but {why[0]}: not checked")
        else:
            report.problems.append(
                f"{head} defines no {name!r}; {_suggest(argument, module, found)}"
            )
        return report
    if call is not None:
        report.problems += _check_factory(head, argument, module, name, binding, call)
    else:
        report.problems += _check_app_object(head, argument, module, name, binding)
    return report


def _check_factory(
    head: str, argument: str, module: str, name: str, binding: _Binding, call: ast.Call
) -> list[str]:
    """``module:name(...)``: ``name`` must be callable to build the app."""
    if binding.looks_like is not None and binding.kind == "assign":
        return [
            f"{head}: {name!r} looks like {binding.looks_like}, not a factory that returns "
            f"one: {argument}='{module}:{name}'"
        ]
    node = binding.node
    if binding.kind == "assign" and isinstance(
        node, ast.Constant | ast.JoinedStr | ast.List | ast.Dict | ast.Set | ast.Tuple
    ):
        return [f"{head} defines {name!r} as a {type(node).__name__.lower()}, not a function"]
    if binding.kind == "def" and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        if isinstance(node, ast.AsyncFunctionDef):
            return [
                f"{head}: {name!r} is an async def: Gunicorn calls a factory without awaiting "
                "it; make it a plain def"
            ]
        if not node.decorator_list:
            mismatch = _arguments_mismatch(node, call)
            if mismatch:
                return [f"{head}: {name}() cannot be called so: {mismatch}"]
    return []


def _check_app_object(
    head: str, argument: str, module: str, name: str, binding: _Binding
) -> list[str]:
    """``module:name``: a ``def`` that takes no positional argument cannot be called as an app
    (WSGI ``(environ, start_response)``, ASGI ``(scope, receive, send)`` or ASGI 2 ``(scope)``),
    nor can a factory by its name that takes fewer than WSGI's two: it is a factory that was
    not called."""
    node = binding.node
    if binding.kind != "def" or not isinstance(node, ast.FunctionDef) or node.decorator_list:
        return []
    arguments = node.args
    positional = len(arguments.posonlyargs) + len(arguments.args)
    needed = 2 if _is_factory(binding) else 1
    if arguments.vararg is not None or positional >= needed:
        return []
    return [
        f"{head}: {name!r} is a function of {positional} positional argument(s), not a WSGI "
        f"app (environ, start_response); if it builds the app, call it: "
        f"{argument}='{module}:{name}()'"
    ]


def _arguments_mismatch(node: ast.FunctionDef, call: ast.Call) -> str | None:
    """Why ``call``'s literal arguments do not fit ``node``'s parameters, or None (the
    signature is rebuilt from the names and which parameters have defaults; nothing of the
    user's code runs)."""
    kind = inspect.Parameter
    given = node.args
    positional = [(a.arg, kind.POSITIONAL_ONLY) for a in given.posonlyargs] + [
        (a.arg, kind.POSITIONAL_OR_KEYWORD) for a in given.args
    ]
    first_default = len(positional) - len(given.defaults)
    parameters = [
        kind(name, how, default=None if index >= first_default else kind.empty)
        for index, (name, how) in enumerate(positional)
    ]
    if given.vararg is not None:
        parameters.append(kind(given.vararg.arg, kind.VAR_POSITIONAL))
    parameters += [
        kind(a.arg, kind.KEYWORD_ONLY, default=kind.empty if d is None else None)
        for a, d in zip(given.kwonlyargs, given.kw_defaults, strict=True)
    ]
    if given.kwarg is not None:
        parameters.append(kind(given.kwarg.arg, kind.VAR_KEYWORD))
    args = [ast.literal_eval(a) for a in call.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
    try:
        inspect.Signature(parameters).bind(*args, **kwargs)
    except TypeError as error:
        return str(error)
    return None


def _suggest(argument: str, module: str, found: _Module) -> str:
    apps = [(n, b) for n, b in found.bindings.items() if b.looks_like is not None]
    if apps:
        described = " and ".join(f"{n!r} ({b.looks_like}?)" for n, b in apps)
        targets = " or ".join(
            f"{argument}='{module}:{n}{'()' if b.kind == 'def' and _is_factory(b) else ''}'"
            for n, b in apps
        )
        return f"it defines {described}: {targets}"
    names = [n for n in found.bindings if not n.startswith("_")]
    if not names:
        return "it defines no public top-level names"
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"its top-level names are {', '.join(names[:NAMES_SHOWN])}{more}"


def _is_factory(binding: _Binding) -> bool:
    return binding.looks_like == "an app factory"


def _read_module(tree: ast.Module) -> _Module:
    found = _Module(bindings={}, undecidable=[], globals_in_functions=set())
    for statement in tree.body:
        _read_statement(statement, found)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.globals_in_functions.update(node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("globals", "vars", "exec")
            and (node.func.id != "vars" or not node.args)
        ):
            found.undecidable.append(f"it calls {node.func.id}()")
    return found


def _read_statement(statement: ast.stmt, found: _Module) -> None:
    bind = found.bindings
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        bind[statement.name] = _Binding("def", statement, _function_looks_like(statement))
        if statement.name == "__getattr__":
            found.undecidable.append("it defines a module-level __getattr__")
    elif isinstance(statement, ast.ClassDef):
        bind[statement.name] = _Binding("class", statement)
    elif isinstance(statement, ast.Import):
        for alias in statement.names:
            bind[alias.asname or alias.name.split(".")[0]] = _Binding("import", statement)
    elif isinstance(statement, ast.ImportFrom):
        for alias in statement.names:
            if alias.name == "*":
                found.undecidable.append(f"it does 'from {statement.module or '.'} import *'")
            else:
                bind[alias.asname or alias.name] = _Binding("import", statement)
    elif isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
        value = statement.value
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if value is None:
            return  # a bare annotation binds nothing
        for target in targets:
            single = isinstance(target, ast.Name)
            for name in _stored_names(target):
                bind[name] = _Binding(
                    "assign",
                    value if single else None,
                    _value_looks_like(value, bind) if single else None,
                )
    else:
        for child in ast.iter_child_nodes(statement):
            if isinstance(child, ast.stmt):
                _read_statement(child, found)
            elif isinstance(child, ast.ExceptHandler | ast.match_case):
                if isinstance(child, ast.ExceptHandler) and child.name:
                    found.bindings.setdefault(child.name, _Binding("other"))
                for inner in child.body:
                    _read_statement(inner, found)
        for node in _expressions_of(statement):
            for name in _stored_names(node):
                bind.setdefault(name, _Binding("other"))


def _expressions_of(statement: ast.stmt) -> list[ast.AST]:
    """The non-statement parts of a compound statement (``for`` targets, ``with ... as``)."""
    return [
        child
        for child in ast.iter_child_nodes(statement)
        if not isinstance(child, ast.stmt | ast.excepthandler | ast.match_case)
    ]


def _stored_names(node: ast.AST) -> list[str]:
    names = []
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.append(child.id)
        elif isinstance(child, ast.NamedExpr) and isinstance(child.target, ast.Name):
            names.append(child.target.id)
    return names


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    elif isinstance(func, ast.Call):  # Configurator().make_wsgi_app()
        inner = _called_name(func)
        if inner:
            parts.append(inner)
    return ".".join(reversed(parts)) or None


def _value_looks_like(value: ast.expr, bindings: dict[str, _Binding]) -> str | None:
    if isinstance(value, ast.Name) and value.id in bindings:
        return bindings[value.id].looks_like  # application = app
    if not isinstance(value, ast.Call):
        return None
    called = _called_name(value)
    if called is None:
        return None
    last = called.rsplit(".", 1)[-1]
    if last in ("App", "API") and "falcon" in called.split("."):
        return "a Falcon ASGI app" if ".asgi." in f".{called}." else "a Falcon app"
    if last in APP_CONSTRUCTORS:
        return APP_CONSTRUCTORS[last]
    if last in FACTORY_NAMES:
        return "an app built by a factory"
    return None


def _function_looks_like(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    if node.name in FACTORY_NAMES:
        return "an app factory"
    names = [a.arg for a in node.args.posonlyargs + node.args.args]
    if names[-2:] == ["environ", "start_response"]:
        return "a WSGI callable"
    if names[-3:] == ["scope", "receive", "send"]:
        return "an ASGI callable"
    return None
