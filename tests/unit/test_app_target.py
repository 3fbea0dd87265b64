"""The app target is checked against its module's source, statically: a name the module does
not define fails with what it does define that looks like an app; what a static read cannot
decide is an advisory."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from gunicorn_alb.app_target import INSTANCE_PYTHON, check_target


def check(tmp_path: Path, target: str, files: dict[str, str]) -> tuple[list[str], list[str]]:
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    report = check_target("wsgi_app", target, tmp_path)
    return report.problems, report.advisories


FLASK = "from flask import Flask\napp = Flask(__name__)\n"


def test_fails_when_a_flask_app_is_not_named_application(tmp_path: Path) -> None:
    problems, _ = check(tmp_path, "app:application", {"app.py": FLASK})
    assert problems == [
        "wsgi_app 'app:application': app.py defines no 'application'; it defines 'app' "
        "(a Flask app?): wsgi_app='app:app'"
    ]


def test_a_module_alone_means_its_application(tmp_path: Path) -> None:
    problems, _ = check(tmp_path, "app", {"app.py": FLASK})
    assert "app.py defines no 'application'" in problems[0]


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("import fastapi\napi = fastapi.FastAPI()\n", "a FastAPI app"),
        ("from starlette.applications import Starlette\napi = Starlette()\n", "a Starlette app"),
        ("from quart import Quart\napi = Quart(__name__)\n", "a Quart app"),
        ("import bottle\napi = bottle.Bottle()\n", "a Bottle app"),
        ("import falcon\napi = falcon.App()\n", "a Falcon app"),
        ("import falcon.asgi\napi = falcon.asgi.App()\n", "a Falcon ASGI app"),
        (
            "from django.core.wsgi import get_wsgi_application\napi = get_wsgi_application()\n",
            "a Django WSGI app",
        ),
        (
            "from django.core.asgi import get_asgi_application\napi = get_asgi_application()\n",
            "a Django ASGI app",
        ),
    ],
)
def test_fails_naming_the_app_the_module_defines(tmp_path: Path, source: str, kind: str) -> None:
    problems, _ = check(tmp_path, "web:application", {"web.py": source})
    assert problems == [
        f"wsgi_app 'web:application': web.py defines no 'application'; it defines 'api' "
        f"({kind}?): wsgi_app='web:api'"
    ]


def test_fails_suggesting_a_factory_call(tmp_path: Path) -> None:
    source = "from flask import Flask\ndef create_app():\n    return Flask(__name__)\n"
    problems, _ = check(tmp_path, "app:application", {"app.py": source})
    assert problems[0].endswith(
        "defines no 'application'; it defines 'create_app' (an app factory?): "
        "wsgi_app='app:create_app()'"
    )


def test_fails_listing_the_top_level_names_when_nothing_looks_like_an_app(
    tmp_path: Path,
) -> None:
    source = "import os\n_private = 1\nA, (B, C) = 1, (2, 3)\nclass D: ...\n"
    problems, _ = check(tmp_path, "app:application", {"app.py": source})
    assert problems[0].endswith("defines no 'application'; its top-level names are os, A, B, C, D")


@pytest.mark.parametrize(
    "source",
    [
        "application = object()\n",
        "application: object = object()\n",
        "x, (y, application) = 1, (2, 3)\n",
        "def application(environ, start_response): ...\n",
        "async def application(scope, receive, send): ...\n",
        "class application: ...\n",
        "import wsgi as application\n",
        "from wsgi import application\n",
        "from wsgi import app as application\n",
        "try:\n    from wsgi import application\nexcept ImportError:\n    application = None\n",
        "if True:\n    application = object()\n",
        "with open('x') as application: ...\n",
        "for application in []: ...\n",
        "app = object()\napplication = app\n",
    ],
)
def test_every_kind_of_top_level_binding_defines_the_name(tmp_path: Path, source: str) -> None:
    assert check(tmp_path, "app:application", {"app.py": source}) == ([], [])


def test_a_bare_annotation_defines_nothing(tmp_path: Path) -> None:
    problems, _ = check(tmp_path, "app:application", {"app.py": "application: object\n"})
    assert "defines no 'application'" in problems[0]


def test_a_name_inside_a_function_is_not_top_level(tmp_path: Path) -> None:
    source = "def main():\n    application = 1\n"
    problems, _ = check(tmp_path, "app:application", {"app.py": source})
    assert "defines no 'application'; its top-level names are main" in problems[0]


def test_packages_and_dotted_modules_are_read(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.web import app\n",
        "pkg/web.py": FLASK,
        "pkg/sub/__init__.py": "application = 1\n",
    }
    assert check(tmp_path, "pkg:app", files) == ([], [])
    assert check(tmp_path, "pkg.web:app", files) == ([], [])
    assert check(tmp_path, "pkg.sub:application", files) == ([], [])
    problems, _ = check(tmp_path, "pkg.web:application", files)
    assert problems[0].startswith("wsgi_app 'pkg.web:application': pkg/web.py defines no")


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("from wsgi import *\n", "it does 'from wsgi import *'"),
        ("globals()['application'] = object()\n", "it calls globals()"),
        ("def __getattr__(name): ...\n", "it defines a module-level __getattr__"),
        ("def init():\n    global application\n    application = 1\n", "global application"),
    ],
)
def test_what_a_static_read_cannot_decide_is_an_advisory(
    tmp_path: Path, source: str, why: str
) -> None:
    problems, advisories = check(tmp_path, "app:application", {"app.py": source})
    assert problems == []
    assert len(advisories) == 1
    assert why in advisories[0]
    assert advisories[0].endswith("not checked")


def test_a_submodule_not_imported_by_the_package_is_an_advisory(tmp_path: Path) -> None:
    files = {"pkg/__init__.py": "", "pkg/app.py": FLASK}
    problems, advisories = check(tmp_path, "pkg:app", files)
    assert problems == []
    assert "a submodule app exists" in advisories[0]


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    problems, advisories = check(tmp_path, "app:application", {"app.py": "x = 1\ndef (:\n"})
    found = problems if sys.version_info >= INSTANCE_PYTHON else advisories
    assert len(found) == 1
    assert found[0].startswith("wsgi_app 'app:application': app.py line 2: invalid syntax")


def test_fails_when_a_factory_call_names_an_app(tmp_path: Path) -> None:
    problems, _ = check(tmp_path, "app:app()", {"app.py": FLASK})
    assert problems == [
        "wsgi_app 'app:app()': app.py: 'app' looks like a Flask app, not a factory that "
        "returns one: wsgi_app='app:app'"
    ]


def test_fails_when_a_factory_call_names_a_constant(tmp_path: Path) -> None:
    problems, _ = check(tmp_path, "app:name()", {"app.py": "name = 'x'\n"})
    assert problems == [
        "wsgi_app 'app:name()': app.py defines 'name' as a constant, not a function"
    ]


def test_fails_when_a_factory_is_async(tmp_path: Path) -> None:
    problems, _ = check(tmp_path, "app:create_app()", {"app.py": "async def create_app(): ...\n"})
    assert "is an async def" in problems[0]


@pytest.mark.parametrize(
    ("target", "ok"),
    [
        ("app:create_app()", False),
        ('app:create_app("prod")', True),
        ('app:create_app(stage="prod")', True),
        ('app:create_app("prod", 1, debug=True)', True),
        ('app:create_app("prod", 1, 2)', False),
        ("app:create_app(colour=1)", False),
    ],
)
def test_a_factory_calls_arguments_must_fit_its_parameters(
    tmp_path: Path, target: str, ok: bool
) -> None:
    source = "def create_app(stage, workers=2, *, debug=False): ...\n"
    problems, _ = check(tmp_path, target, {"app.py": source})
    assert (problems == []) is ok, problems
    if not ok:
        assert "create_app() cannot be called so:" in problems[0]


@pytest.mark.parametrize(
    "source",
    [
        "from factories import create_app\n",
        "import factories as create_app\n",
        "class create_app: ...\n",
        "@decorated\ndef create_app(): ...\n",
        "create_app = lambda: None\n",
    ],
)
def test_a_factory_that_cannot_be_checked_further_is_accepted(tmp_path: Path, source: str) -> None:
    assert check(tmp_path, 'app:create_app("x")', {"app.py": source}) == ([], [])


def test_fails_when_a_factory_is_named_without_calling_it(tmp_path: Path) -> None:
    source = "def create_app():\n    ...\n"
    problems, _ = check(tmp_path, "app:create_app", {"app.py": source})
    assert problems == [
        "wsgi_app 'app:create_app': app.py: 'create_app' is a function of 0 positional "
        "argument(s), not a WSGI app (environ, start_response); if it builds the app, call "
        "it: wsgi_app='app:create_app()'"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "def application(scope):\n    ...\n",  # ASGI 2: the app takes the scope
        "def application(environ, start_response): ...\n",
        "def application(*args): ...\n",
        "class application: ...\n",
    ],
)
def test_a_callable_that_can_take_an_app_call_is_accepted(tmp_path: Path, source: str) -> None:
    assert check(tmp_path, "app:application", {"app.py": source}) == ([], [])


def test_fails_when_a_function_without_arguments_is_named_as_the_app(tmp_path: Path) -> None:
    problems, _ = check(tmp_path, "app:application", {"app.py": "def application(): ...\n"})
    assert "'application' is a function of 0 positional argument(s)" in problems[0]


def test_a_missing_module_is_left_to_the_directory_check(tmp_path: Path) -> None:
    assert check(tmp_path, "nope:application", {}) == ([], [])


@pytest.mark.parametrize(
    ("directory", "target"),
    [
        ("constructs/gunicorn_alb/sample_app", "app:application"),
        ("examples/django/app", "mysite.wsgi:application"),
        ("examples/fastapi/app", "main:create_app()"),
    ],
)
def test_the_shipped_apps_pass(root: Path, directory: str, target: str) -> None:
    report = check_target("wsgi_app", target, root / directory)
    assert (report.problems, report.advisories) == ([], [])
