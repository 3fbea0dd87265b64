"""Where the docs' snippets are: the files under ``docs/snippets/`` and the README's blocks."""

from __future__ import annotations

import re

from tests.conftest import ROOT

SNIPPETS = ROOT / "docs" / "snippets"
README = ROOT / "README.md"
# The docs' CDK apps: the README's quick start (run from the README's own text) and the rest.
CDK_APPS = ("app.py", "production.py")


def readme_files() -> dict[str, str]:
    """The README's Python blocks by the file each names in its first line (``# app.py: ...``)."""
    files = {}
    for block in re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.S | re.M):
        first = block.splitlines()[0]
        match = re.match(r"^# ([\w./]+\.py):", first)
        assert match, f"a README Python block must start with '# <file>.py:', got {first!r}"
        files[match.group(1)] = block
    return files
