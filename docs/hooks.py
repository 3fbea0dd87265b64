"""MkDocs hook: the API reference's props table, generated from ``service.py`` at build time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tools.docs.props_table import PLACEHOLDER, markdown_table, read_props  # noqa: E402


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if PLACEHOLDER in markdown:
        return markdown.replace(PLACEHOLDER, markdown_table(read_props()))
    return markdown
