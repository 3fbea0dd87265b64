"""The wheelhouse: every Python package an instance installs, resolved at synth time as wheels for
the instance's platform (CPython on Amazon Linux 2023, x86_64 or aarch64), so that the boot
installs with ``pip install --no-index --find-links`` and never contacts PyPI.

No CDK import: the construct ships the folder :func:`build` returns as an S3 asset.

A wheelhouse is cached under a hash of its inputs (the requirements, the content of the
requirements files, the platform, the Python version), in ``$GUNICORN_ALB_WHEELHOUSE_CACHE`` or
``~/.cache/gunicorn-alb/wheelhouse``: a repeated synth finds it and does no network work. The first
synth of a set of inputs runs ``pip download`` (PyPI, or the index pip is configured with).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gunicorn_alb import rendering

PYTHON_VERSION = rendering.PYTHON.removeprefix("python")
"""The instances' Python (``python3.12`` from Amazon Linux 2023's repositories)."""

GLIBC = (2, 34)
"""Amazon Linux 2023's glibc (AL2023 user guide, "Core toolchain packages glibc, gcc, binutils"):
wheels tagged ``manylinux_2_X`` with X <= 34 run on it."""

ARCHITECTURES = ("x86_64", "aarch64")
"""``uname -m`` of the instance types: x86_64 (Intel/AMD) and aarch64 (Graviton)."""

MANIFEST = "wheelhouse.json"
"""Written into every wheelhouse: its inputs and the wheels pip chose, for review."""

CACHE_ENV = "GUNICORN_ALB_WHEELHOUSE_CACHE"
_FORMAT = 1
"""Bump to invalidate every cached wheelhouse when the layout or the pip options change."""
_PIP_TIMEOUT_SECONDS = 900
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_NESTED = re.compile(r"^\s*(-r|--requirement|-c|--constraint)[\s=]+(\S+)")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_NOT_FOUND = re.compile(
    r"Could not find a version that satisfies the requirement (\S+)"
    r"(?: \(from (?!versions:)([^)]*)\))?"
)
_NETWORK = (
    "Failed to establish a new connection",
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "ProxyError",
    "Network is unreachable",
)


_FETCH_FAILED = re.compile(r"Could not fetch URL (\S+?): (.*?)(?: - skipping)?$", re.MULTILINE)
"""pip's debug line (in its ``--log``, at any verbosity) when an index page could not be read."""
_UNREACHABLE_REASONS = ("connection error", "timed out", "problem confirming the ssl")
"""The reasons in :data:`_FETCH_FAILED` that are the network's (a 404 is the index saying the
project does not exist there)."""
_NO_VERSIONS = "(from versions: none)"


class WheelhouseError(ValueError):
    """The wheelhouse cannot be built; the message says which package, for which platform, and
    what to do. ``requirement`` is the distribution name pip could not find, if any; ``network``
    says that pip could not reach the package index (then no package is to blame)."""

    def __init__(
        self, message: str, requirement: str | None = None, *, network: bool = False
    ) -> None:
        super().__init__(message)
        self.requirement = requirement
        self.network = network


def manylinux_platforms(architecture: str, glibc: tuple[int, int] = GLIBC) -> list[str]:
    """pip ``--platform`` values for every manylinux tag a glibc runs, newest first.

    pip does not widen an explicit ``--platform manylinux_2_34_x86_64`` to the older tags the way
    an installing pip does, so a wheel tagged only ``manylinux_2_28`` (gevent 26.9) would be
    missed: every tag is listed, with the legacy aliases (manylinux2014 = 2_17, manylinux2010 =
    2_12, manylinux1 = 2_5; aarch64 wheels start at manylinux2014).
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}"
        )
    major, newest = glibc
    oldest = 17 if architecture == "aarch64" else 5
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    platforms = []
    for minor in range(newest, oldest - 1, -1):
        platforms.append(f"manylinux_{major}_{minor}_{architecture}")
        if minor in legacy:
            platforms.append(f"{legacy[minor]}_{architecture}")
    return platforms


def normalize(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class WheelhouseSpec:
    """What a wheelhouse holds: these requirements, resolved together, for one platform."""

    requirements: tuple[str, ...]
    """Requirement strings: the pinned Gunicorn and the worker's extra packages."""
    requirement_files: tuple[Path, ...] = ()
    """The app's requirements file(s); nested ``-r``/``-c`` files are followed."""
    architecture: str = "x86_64"
    python_version: str = PYTHON_VERSION
    build_from_source: tuple[str, ...] = ()
    """Distribution names left out of the wheelhouse: the boot builds them from source (and
    fetches their dependencies) from PyPI."""

    @property
    def platform(self) -> str:
        """For messages: ``CPython 3.12 on manylinux (glibc <= 2.34) x86_64``."""
        return (
            f"CPython {self.python_version} on manylinux (glibc <= {GLIBC[0]}.{GLIBC[1]}) "
            f"{self.architecture}"
        )

    def key(self) -> str:
        """A hash of every input: the same key means the same wheelhouse."""
        files = [
            [str(path), hashlib.sha256(path.read_bytes()).hexdigest()]
            for top in self.requirement_files
            for path in _requirement_files(Path(top))
        ]
        inputs = {
            "format": _FORMAT,
            "requirements": list(self.requirements),
            "files": files,
            "platforms": manylinux_platforms(self.architecture),
            "python": self.python_version,
            "build_from_source": sorted(normalize(n) for n in self.build_from_source),
        }
        encoded = json.dumps(inputs, sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:32]


def cache_root() -> Path:
    """``$GUNICORN_ALB_WHEELHOUSE_CACHE``, else ``$XDG_CACHE_HOME/gunicorn-alb/wheelhouse``, else
    ``~/.cache/gunicorn-alb/wheelhouse``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gunicorn-alb" / "wheelhouse"


def build(
    spec: WheelhouseSpec,
    *,
    cache: Path | None = None,
    pip_options: Sequence[str] = (),
) -> Path:
    """The wheelhouse folder for ``spec``: from the cache, or downloaded (once, under a lock
    shared by concurrent synths) with ``pip download --only-binary=:all:``.

    :param cache: the cache folder. Default: - :func:`cache_root`
    :param pip_options: extra ``pip download`` options (tests pass ``--no-index --find-links``).
    :raises WheelhouseError: a requirement has no wheel for the platform, or pip failed.
    """
    root = cache or cache_root()
    target = root / spec.key()
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{target.name}.lock"):
        if target.is_dir():  # another synth built it while this one waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=root))
        try:
            _download(spec, staging, pip_options)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pip_download_command(
    spec: WheelhouseSpec, dest: Path, requirement_files: Sequence[Path]
) -> list[str]:
    """The ``pip download`` command line (run by :func:`_download` under target markers)."""
    command = [
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        spec.python_version,
        "--abi",
        f"cp{spec.python_version.replace('.', '')}",
        "--dest",
        str(dest),
    ]
    for platform in manylinux_platforms(spec.architecture):
        command += ["--platform", platform]
    command += list(spec.requirements)
    for path in requirement_files:
        command += ["--requirement", str(path)]
    return command


# pip evaluates environment markers (``; python_version >= "3.12"``, ``platform_machine``) with
# the interpreter it runs on, not the --python-version/--platform target (pip issue #6117), so
# the resolution runs with packaging's marker environment set to the instance's.
_PIP_WITH_TARGET_MARKERS = """
import json, sys
from pip._vendor.packaging import markers
target = json.loads(sys.argv.pop(1))
host = markers.default_environment
markers.default_environment = lambda: {**host(), **target}
from pip._internal.cli.main import main
sys.exit(main())
"""


def target_markers(spec: WheelhouseSpec) -> dict[str, str]:
    """The PEP 508 marker values of the instances' Python."""
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": spec.python_version,
        "python_full_version": f"{spec.python_version}.0",
        "implementation_version": f"{spec.python_version}.0",
        "platform_machine": spec.architecture,
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
    }


def _download(spec: WheelhouseSpec, dest: Path, pip_options: Sequence[str]) -> None:
    excluded = {normalize(name) for name in spec.build_from_source}
    requirements = tuple(r for r in spec.requirements if normalize(_name(r) or r) not in excluded)
    filtered = WheelhouseSpec(
        requirements=requirements,
        requirement_files=spec.requirement_files,
        architecture=spec.architecture,
        python_version=spec.python_version,
    )
    with tempfile.TemporaryDirectory() as scratch:
        files = [
            _filter_file(Path(path), excluded, Path(scratch)) if excluded else Path(path)
            for path in spec.requirement_files
        ]
        log = Path(scratch) / "pip.log"  # pip's debug log, whatever its verbosity
        command = [
            sys.executable,
            "-c",
            _PIP_WITH_TARGET_MARKERS,
            json.dumps(target_markers(spec)),
            *pip_download_command(filtered, dest, files),
            "--log",
            str(log),
            *pip_options,
        ]
        if not requirements and not files:
            result = None
        else:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=_PIP_TIMEOUT_SECONDS,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        debug_log = log.read_text(errors="replace") if log.is_file() else ""
    if result is not None and result.returncode != 0:
        output = result.stdout + result.stderr
        unreachable = unreachable_index(output, debug_log)
        if unreachable is not None and found_nothing(output):
            raise WheelhouseError(explain_unreachable(spec, output, unreachable), network=True)
        message = explain_failure(spec, output)
        if unreachable is not None:  # another index answered: the version may be on this one
            message += f" (pip could not reach one index, though: {unreachable})"
        raise WheelhouseError(message, _missing(output))
    wheels = sorted(p.name for p in dest.iterdir() if p.name.endswith(".whl"))
    strays = sorted(p.name for p in dest.iterdir() if not p.name.endswith(".whl"))
    if strays:
        raise WheelhouseError(
            f"pip download left non-wheel files for {spec.platform}: {', '.join(strays)}"
        )
    (dest / MANIFEST).write_text(
        json.dumps(
            {
                "python_version": spec.python_version,
                "architecture": spec.architecture,
                "requirements": list(spec.requirements),
                "requirement_files": [Path(p).name for p in spec.requirement_files],
                "build_from_source": list(spec.build_from_source),
                "wheels": wheels,
            },
            indent=2,
        )
        + "\n"
    )


def unreachable_index(output: str, debug_log: str = "") -> str | None:
    """pip's last line saying it could not reach an index, if any. pip names the network only
    in its retry warnings (none with ``PIP_RETRIES=0``) and in its debug log (``--log``); its
    error says "from versions: none" whether the index is down or lists no such project."""
    fetch_failures = [
        match.group(0).removesuffix(" - skipping")
        for match in _FETCH_FAILED.finditer(debug_log)
        if match.group(2).lower().startswith(_UNREACHABLE_REASONS)
    ]
    retry_warnings = [
        line for line in output.splitlines() if any(marker in line for marker in _NETWORK)
    ]
    failures = fetch_failures or retry_warnings
    return failures[-1].strip() if failures else None


def found_nothing(output: str) -> bool:
    """pip found no version of the failing requirement on any index (or named none)."""
    return _NO_VERSIONS in output or not _NOT_FOUND.search(output)


def explain_unreachable(spec: WheelhouseSpec, output: str, unreachable: str) -> str:
    """The network, not a package: the index could not be reached."""
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    return (
        f"could not reach the package index (network), so no package could be checked: "
        f"building the wheelhouse for {spec.platform} needs the package index once (PyPI, or "
        "the index pip is configured with); later synths of the same requirements use the "
        f"cache ({cache_root()}, or ${CACHE_ENV}). pip said:\n"
        + "\n".join([unreachable, *errors[-2:]])
    )


def explain_failure(spec: WheelhouseSpec, output: str) -> str:
    """One message from pip's output: the package, the platform, and what to do."""
    found = _NOT_FOUND.search(output)
    missing = _NO_MATCH.search(output)
    requirement = (found.group(1) if found else None) or (missing.group(1) if missing else None)
    if requirement is None:
        return f"pip download failed for {spec.platform}:\n{_tail(output)}"
    name = _name(requirement) or requirement
    needed_by = f" (needed by {found.group(2)})" if found and found.group(2) else ""
    return (
        f"{requirement}{needed_by} has no wheel for {spec.platform}, and the instances install "
        "from a wheelhouse built at synth, without PyPI. Use a version that publishes such a "
        f"wheel, or pass build_from_source=[{name!r}"
        + (f", {_name(found.group(2)) or found.group(2)!r}" if needed_by and found else "")
        + "] to build it from source at boot: the instances then need a route to PyPI "
        "(a NAT gateway) and install gcc and the Python headers with dnf."
    )


def _missing(output: str) -> str | None:
    """The normalized name of the requirement pip found no wheel for, if it says so."""
    found = _NOT_FOUND.search(output) or _NO_MATCH.search(output)
    name = _name(found.group(1)) if found else None
    return normalize(name) if name else None


def _tail(output: str, lines: int = 12) -> str:
    kept = [
        line for line in output.splitlines() if line.strip() and "WARNING: Location" not in line
    ]
    return "\n".join(kept[-lines:])


def _name(requirement: str) -> str | None:
    match = _REQUIREMENT_NAME.match(requirement)
    return match.group(1) if match else None


def _requirement_files(path: Path, seen: set[Path] | None = None) -> list[Path]:
    """``path`` and every file it includes with ``-r``/``-c`` (relative to the including file)."""
    seen = set() if seen is None else seen
    resolved = path.resolve()
    if resolved in seen or not resolved.is_file():
        return []
    seen.add(resolved)
    found = [resolved]
    for line in resolved.read_text().splitlines():
        nested = _NESTED.match(line)
        if nested:
            found += _requirement_files(resolved.parent / nested.group(2), seen)
    return found


def _filter_file(path: Path, excluded: set[str], scratch: Path) -> Path:
    """A copy of a requirements file without the requirements named in ``excluded`` (nested
    files filtered too), in ``scratch``."""
    lines = []
    for line in path.read_text().splitlines():
        nested = _NESTED.match(line)
        stripped = line.strip()
        if nested:
            inner = _filter_file(path.parent / nested.group(2), excluded, scratch)
            lines.append(f"{nested.group(1)} {inner}")
        elif stripped and not stripped.startswith(("#", "-")):
            name = _name(stripped)
            if name is None or normalize(name) not in excluded:
                lines.append(line)
        else:
            lines.append(line)
    copy = Path(tempfile.mkstemp(prefix=path.stem, suffix=".txt", dir=scratch)[1])
    copy.write_text("\n".join(lines) + "\n")
    return copy
