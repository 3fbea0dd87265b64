"""The wheelhouse: real pip (a process per scenario) resolving against a local folder of wheels
built here (offline), the cache, the messages; one test resolves the real pins on PyPI (cached
after the first run). Runtime tests: they run pip itself."""

from __future__ import annotations

import json
import os
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gunicorn_alb import rendering, timeouts, wheelhouse
from gunicorn_alb.wheelhouse import WheelhouseError, WheelhouseSpec

pytestmark = pytest.mark.runtime


def make_wheel(
    folder: Path, name: str, version: str, tag: str = "py3-none-any", requires: tuple[str, ...] = ()
) -> Path:
    """A minimal, valid wheel (metadata, WHEEL, RECORD and one module)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    files = {
        f"{name}/__init__.py": "",
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in {**files, f"{dist_info}/RECORD": record}.items():
            archive.writestr(member, content)
    return path


OFFLINE = ("--no-index", "--find-links")
Built = dict[str, "Path | WheelhouseError"]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --find-links folder of wheels for several platforms, and an app's requirements."""
    root = tmp_path_factory.mktemp("index")
    links = root / "links"
    make_wheel(links, "native", "1.0", "cp312-cp312-manylinux_2_28_x86_64")
    make_wheel(links, "native", "1.0", "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64")
    # Newer, but for a glibc newer than Amazon Linux 2023's 2.34, or another Python: never chosen.
    make_wheel(links, "native", "2.0", "cp312-cp312-manylinux_2_35_x86_64")
    make_wheel(links, "native", "2.0", "cp311-cp311-manylinux_2_17_x86_64")
    make_wheel(links, "stable", "1.0", "cp38-abi3-manylinux2014_x86_64")
    make_wheel(links, "legacy", "1.0", "cp312-cp312-manylinux1_x86_64")
    make_wheel(links, "pure", "1.0", requires=("native>=1.0",))
    make_wheel(links, "newpython", "1.0")
    make_wheel(links, "armonly", "1.0")
    make_wheel(links, "needsmissing", "1.0", requires=("nowheel==1.0",))
    (links / "nowheel-1.0.tar.gz").write_bytes(b"an sdist stands in")
    app = root / "app"
    app.mkdir()
    (app / "requirements.txt").write_text(
        'newpython==1.0; python_version >= "3.12"\n'
        'armonly==1.0; platform_machine == "aarch64"\n'
        "-r more.txt\n"
    )
    (app / "more.txt").write_text("pure==1.0\n")
    (app / "with-source.txt").write_text("pure==1.0\nNoWheel==1.0  # built at boot\n")
    return root


SCENARIOS: dict[str, tuple[dict[str, object], tuple[str, ...]]] = {
    "x86_64": (
        {"requirements": ("stable", "legacy"), "requirement_files": ("requirements.txt",)},
        OFFLINE,
    ),
    "aarch64": (
        {
            "requirements": (),
            "requirement_files": ("requirements.txt",),
            "architecture": "aarch64",
        },
        OFFLINE,
    ),
    "no-wheel": ({"requirements": ("nowheel==1.0",), "architecture": "aarch64"}, OFFLINE),
    "no-wheel-below": ({"requirements": ("needsmissing",)}, OFFLINE),
    "from-source": (
        {
            "requirements": ("needsmissing",),
            "requirement_files": ("with-source.txt",),
            "build_from_source": ("nowheel", "needsmissing"),
        },
        OFFLINE,
    ),
    # Port 9 (discard) on loopback: nothing listens there, the connection is refused at once.
    "unreachable": (
        {"requirements": ("pure",)},
        ("--index-url", "http://127.0.0.1:9/simple", "--retries", "1", "--timeout", "2"),
    ),
    # No retries: pip prints no retry warning, only "from versions: none"; its log names the
    # network.
    "unreachable-no-retries": (
        {"requirements": ("pure",)},
        ("--index-url", "http://127.0.0.1:9/simple", "--retries", "0"),
    ),
    # One index down, another (the links) answers without the version: the package's problem.
    "no-version-one-index-down": (
        {"requirements": ("pure==2.0",)},
        ("--index-url", "http://127.0.0.1:9/simple", "--retries", "0", "--find-links"),
    ),
}


def spec_of(index: Path, name: str) -> WheelhouseSpec:
    values = dict(SCENARIOS[name][0])
    files = values.pop("requirement_files", ())
    return WheelhouseSpec(
        requirement_files=tuple(index / "app" / str(f) for f in files),  # type: ignore[attr-defined]
        **values,  # type: ignore[arg-type]
    )


def options_of(index: Path, name: str) -> tuple[str, ...]:
    options = SCENARIOS[name][1]
    return (*options, str(index / "links")) if options[-1] == "--find-links" else options


@pytest.fixture(scope="module")
def built(index: Path) -> dict[str, Path | WheelhouseError]:
    """Every scenario built once, in parallel (pip starts slowly); pip's own config ignored."""
    results: dict[str, Path | WheelhouseError] = {}

    def run(name: str) -> None:
        try:
            results[name] = wheelhouse.build(
                spec_of(index, name), cache=index / "cache", pip_options=options_of(index, name)
            )
        except WheelhouseError as error:
            results[name] = error

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_CONFIG_FILE", os.devnull)
        for variable in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
            patch.delenv(variable, raising=False)
        with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
            list(pool.map(run, SCENARIOS))
    return results


def folder(built: Built, name: str) -> Path:
    result = built[name]
    assert isinstance(result, Path), result
    return result


def wheels(built: Built, name: str) -> list[str]:
    return sorted(p.name for p in folder(built, name).glob("*.whl"))


def message(built: Built, name: str) -> str:
    result = built[name]
    assert isinstance(result, WheelhouseError), f"{name} built: {result}"
    return str(result)


def test_manylinux_tags_cover_every_glibc_up_to_amazon_linux_2023s() -> None:
    x86 = wheelhouse.manylinux_platforms("x86_64")
    assert x86[0] == "manylinux_2_34_x86_64"
    assert {"manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(x86)
    assert "manylinux_2_35_x86_64" not in x86
    arm = wheelhouse.manylinux_platforms("aarch64")
    assert arm[0] == "manylinux_2_34_aarch64" and arm[-1] == "manylinux2014_aarch64"
    assert wheelhouse.PYTHON_VERSION == "3.12" == rendering.PYTHON.removeprefix("python")


def test_pip_picks_the_newest_wheel_that_runs_on_the_instance(built: Built) -> None:
    """Also: markers are evaluated for the instance's Python 3.12 (newpython), whatever Python
    runs the synth, and for its machine (armonly is for aarch64)."""
    assert wheels(built, "x86_64") == [
        "legacy-1.0-cp312-cp312-manylinux1_x86_64.whl",
        "native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "newpython-1.0-py3-none-any.whl",
        "pure-1.0-py3-none-any.whl",
        "stable-1.0-cp38-abi3-manylinux2014_x86_64.whl",
    ]
    manifest = json.loads((folder(built, "x86_64") / wheelhouse.MANIFEST).read_text())
    assert manifest["architecture"] == "x86_64"
    assert manifest["wheels"] == wheels(built, "x86_64")


def test_an_aarch64_wheelhouse_holds_aarch64_wheels(built: Built) -> None:
    assert wheels(built, "aarch64") == [
        "armonly-1.0-py3-none-any.whl",
        "native-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "newpython-1.0-py3-none-any.whl",
        "pure-1.0-py3-none-any.whl",
    ]


def test_a_second_build_comes_from_the_cache_without_pip(
    built: Built, index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran although the wheelhouse is cached")

    monkeypatch.setattr(wheelhouse.subprocess, "run", no_pip)
    spec = spec_of(index, "x86_64")
    assert wheelhouse.build(spec, cache=index / "cache") == folder(built, "x86_64")
    # A change in a nested requirements file is a new wheelhouse.
    nested = index / "app" / "more.txt"
    original = nested.read_text()
    nested.write_text(original + "stable==1.0\n")
    try:
        with pytest.raises(AssertionError, match="pip ran"):
            wheelhouse.build(spec, cache=index / "cache")
    finally:
        nested.write_text(original)


def test_the_cache_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(wheelhouse.CACHE_ENV, str(tmp_path / "mine"))
    assert wheelhouse.cache_root() == tmp_path / "mine"
    monkeypatch.delenv(wheelhouse.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert wheelhouse.cache_root() == tmp_path / "xdg" / "gunicorn-alb" / "wheelhouse"


def test_fails_when_a_requirement_has_no_wheel_for_the_platform(built: Built, index: Path) -> None:
    assert re.search(
        r"^nowheel==1.0 has no wheel for CPython 3.12 on manylinux \(glibc <= 2.34\) aarch64.*"
        r"build_from_source=\['nowheel'\].*route to PyPI",
        message(built, "no-wheel"),
    ), message(built, "no-wheel")
    assert not (index / "cache" / spec_of(index, "no-wheel").key()).exists()


def test_fails_when_a_dependency_has_no_wheel_and_names_who_needs_it(built: Built) -> None:
    assert re.search(
        r"^nowheel==1.0 \(needed by needsmissing\) has no wheel.*"
        r"build_from_source=\['nowheel', 'needsmissing'\]",
        message(built, "no-wheel-below"),
    ), message(built, "no-wheel-below")


def test_build_from_source_leaves_the_named_packages_to_the_boot(built: Built) -> None:
    assert wheels(built, "from-source") == [
        "native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "pure-1.0-py3-none-any.whl",
    ]
    manifest = json.loads((folder(built, "from-source") / wheelhouse.MANIFEST).read_text())
    assert manifest["build_from_source"] == ["nowheel", "needsmissing"]


def test_fails_when_the_index_cannot_be_reached_and_says_the_cache_would_serve(
    built: Built,
) -> None:
    assert re.search(
        r"needs the package index once .*; later synths of the same requirements use the cache",
        message(built, "unreachable"),
    ), message(built, "unreachable")


@pytest.mark.parametrize("scenario", ["unreachable", "unreachable-no-retries"])
def test_fails_naming_the_network_not_a_package_when_the_index_is_down(
    built: Built, scenario: str
) -> None:
    error = built[scenario]
    assert isinstance(error, WheelhouseError)
    assert (error.network, error.requirement) == (True, None)
    text = str(error)
    assert text.startswith("could not reach the package index (network)"), text
    assert "has no wheel" not in text
    assert "ERROR: Could not find a version that satisfies the requirement pure" in text


def test_the_network_is_named_from_pips_log_when_pip_does_not_retry(built: Built) -> None:
    assert re.search(
        r"pip said:\nCould not fetch URL http://127\.0\.0\.1:9/simple/pure/: connection error",
        message(built, "unreachable-no-retries"),
    ), message(built, "unreachable-no-retries")


def test_a_version_missing_from_an_index_that_answered_is_the_packages_problem(
    built: Built,
) -> None:
    error = built["no-version-one-index-down"]
    assert isinstance(error, WheelhouseError)
    assert (error.network, error.requirement) == (False, "pure")
    text = str(error)
    assert text.startswith("pure==2.0 has no wheel for CPython 3.12"), text
    assert "(pip could not reach one index, though: Could not fetch URL" in text


@pytest.mark.parametrize("architecture", wheelhouse.ARCHITECTURES)
def test_the_real_pins_resolve_as_wheels_for_both_architectures(architecture: str) -> None:
    """PyPI (once; then the shared cache): the pinned Gunicorn and gevent, whose 26.9.0 wheels are
    tagged manylinux_2_28 only, so they are found only because every tag is listed."""
    spec = WheelhouseSpec(
        requirements=(
            f"gunicorn=={rendering.GUNICORN_VERSION}",
            *timeouts.KEEPALIVE_WORKER_CLASSES["gevent"],
        ),
        architecture=architecture,
    )
    names = [p.name for p in wheelhouse.build(spec).glob("*.whl")]
    assert f"gunicorn-{rendering.GUNICORN_VERSION}-py3-none-any.whl" in names
    (gevent,) = [n for n in names if n.startswith("gevent-")]
    assert "cp312" in gevent and gevent.endswith(f"_{architecture}.whl")
