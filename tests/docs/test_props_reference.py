"""Every prop of the construct is in the API reference, with its default, and nothing else is.

The reference's props table is generated from ``service.py`` at build time
(``tools/docs/props_table.py``, read without importing aws-cdk-lib); these tests hold that parse
to the real signature and the built page to the parse.
"""

from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

from tools.docs.props_table import read_props


def _signature() -> inspect.Signature:
    from gunicorn_alb import ApplicationLoadBalancedGunicornService

    return inspect.signature(ApplicationLoadBalancedGunicornService.__init__)


def test_the_parse_matches_the_real_signature() -> None:
    keyword_only = [
        p for p in _signature().parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    props = read_props()
    assert [p.name for p in props] == [p.name for p in keyword_only]
    for prop, param in zip(props, keyword_only, strict=True):
        assert (prop.signature_default is None) == (param.default is inspect.Parameter.empty)


def test_every_optional_prop_documents_its_default_and_no_docstring_param_is_stale() -> None:
    from gunicorn_alb import ApplicationLoadBalancedGunicornService

    props = read_props()
    missing = [p.name for p in props if p.signature_default is not None and not p.default]
    assert missing == []
    documented = set(
        re.findall(r"^\s*:param (\w+):", ApplicationLoadBalancedGunicornService.__doc__ or "", re.M)
    )
    assert documented - {"scope", "id"} == {p.name for p in props}


def _props_table(page: str) -> dict[str, list[str]]:
    """The rendered props table: prop -> its cells as text."""
    start = page.index("<th>prop</th>")
    table = page[start : page.index("</table>", start)]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td>(.*?)</td>", row, re.S)
        ]
        if cells:  # the header row has <th> cells
            rows[cells[0]] = cells
    return rows


def _text(markup: str) -> str:
    """A docstring fragment as the page shows it: reST roles and backticks gone."""
    markup = re.sub(r":(?:mod|class|func|meth|attr):`~?([^`]+)`", r"\1", markup)
    return " ".join(markup.replace("`", "").split())


def test_the_reference_page_lists_every_prop_with_its_default(built_site: Path) -> None:
    table = _props_table((built_site / "reference" / "index.html").read_text())
    props = read_props()
    assert list(table) == [p.name for p in props]  # every prop, none stale, in signature order
    for prop in props:
        _, _, default, description = table[prop.name]
        expected = "(required)" if prop.signature_default is None else _text(prop.default or "")
        assert " ".join(default.split()) == expected, prop.name
        assert " ".join(description.split()) == _text(prop.description), prop.name


def test_the_api_reference_renders_the_docstrings(built_site: Path) -> None:
    page = (built_site / "reference" / "index.html").read_text()
    for anchor in (
        "gunicorn_alb.service.ApplicationLoadBalancedGunicornService",
        "gunicorn_alb.secret.Secret",
        "gunicorn_alb.network.PrivateEndpoints",
        "gunicorn_alb.monitoring.AlarmThresholds",
    ):
        assert f'id="{anchor}"' in page, anchor
    assert "One number drives both sides" in page
