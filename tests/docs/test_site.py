"""The docs site builds strictly, and the README stays a front door whose links resolve."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_site_builds_strictly_without_warnings(site_build: tuple[Path, str]) -> None:
    site, log = site_build
    assert not [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    for page in ("index.html", "getting-started/index.html", "reference/index.html"):
        assert (site / page).exists()
    # the diagrams are files of the site, not fetched from anywhere
    assert (site / "images" / "race-timeline.svg").exists()
    assert (site / "images" / "architecture.svg").exists()


def test_pages_have_no_unresolved_includes_or_placeholders(built_site: Path) -> None:
    for page in built_site.rglob("*.html"):
        text = page.read_text()
        assert "--8&lt;--" not in text and "--8<--" not in text, page
        assert "props-table" not in text, page
        assert "::: gunicorn_alb" not in text, page


def test_site_loads_nothing_from_the_internet(built_site: Path) -> None:
    """The site works offline: no web fonts, no scripts or styles from a CDN."""
    remote = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(https?:)?//', re.IGNORECASE)
    for page in built_site.rglob("*.html"):
        assert not remote.findall(page.read_text()), page


def test_readme_is_short_and_keeps_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "make synth" in text and "make test" in text


def test_readme_relative_links_resolve() -> None:
    for target in _LINK.findall(README.read_text()):
        if target.startswith(("http://", "https://", "#")):
            continue
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"README links to {target}, which does not exist"


def test_every_construct_warning_id_is_documented() -> None:
    """Each ``gunicorn-alb:<id>`` warning the code can raise has a row in Getting started."""
    package = ROOT / "constructs" / "gunicorn_alb"
    code = "\n".join(p.read_text() for p in package.rglob("*.py"))
    # warnings added directly, and the advisories the construct prefixes with "gunicorn-alb:"
    ids = set(re.findall(r'"gunicorn-alb:([a-z0-9-]+)"', code)) | _advisory_ids()
    page = (ROOT / "docs" / "getting-started.md").read_text()
    missing = sorted(i for i in ids if f"`gunicorn-alb:{i}`" not in page)
    assert ids and not missing, missing


def _advisory_ids() -> set[str]:
    import tempfile

    from gunicorn_alb import app_validation, capacity, instance_logs, timeouts

    found = {i for i, _ in capacity.spot_advisories(100, 3600)}
    uvicorn = "uvicorn_worker.UvicornWorker"
    found |= {i for i, _ in instance_logs.access_log_advisories(uvicorn, True)}
    model = timeouts.derive_timeouts(60, max_requests=1000, max_requests_jitter=50)
    found |= {i for i, _ in model.advisories}
    with tempfile.TemporaryDirectory() as app:  # a star import: the target cannot be read
        (Path(app) / "app.py").write_text("from elsewhere import *\n")
        found |= {i for i, _ in app_validation.check_target_defined([], Path(app), "app:app")}
    return found
