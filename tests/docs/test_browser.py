"""Every page of the built site opens in headless Chromium (Debian's ``chromium``, offline)
without console errors or failed loads, and the diagrams render."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.docs.browser_check import check_site

pytestmark = pytest.mark.runtime


def test_every_page_opens_without_errors_and_the_diagrams_render(built_site: Path) -> None:
    reports = check_site(built_site)
    pages = {r.path for r in reports}
    assert {p.relative_to(built_site).as_posix() for p in built_site.rglob("*.html")} == pages
    assert {r.path: r.errors for r in reports if r.errors} == {}
    assert {r.path: r.broken_images for r in reports if r.broken_images} == {}
    diagrams = {
        (r.path, i["src"]) for r in reports for i in r.images if str(i["src"]).endswith(".svg")
    }
    assert ("index.html", "images/race-timeline.svg") in diagrams
    assert ("index.html", "images/architecture.svg") in diagrams
    assert ("architecture/index.html", "../images/architecture.svg") in diagrams
