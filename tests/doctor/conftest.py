"""Fixtures for the doctor tests: fake credentials, an in-process moto AWS, a fleet builder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from tests.doctor.fleets import REGION, Account

_ISOLATED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
    "AWS_ENDPOINT_URL_AUTO_SCALING",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_CLOUDWATCH",
    "AWS_ENDPOINT_URL_CLOUDFORMATION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


_LOADERS: dict[str | None, botocore.loaders.Loader] = {}


def _shared_loader(search_paths: str | None = None) -> botocore.loaders.Loader:
    if search_paths not in _LOADERS:
        _LOADERS[search_paths] = botocore.loaders.create_loader(search_paths)
    return _LOADERS[search_paths]


@pytest.fixture(autouse=True)
def shared_service_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every botocore session of these tests shares one loader, as boto3's default session
    shares one between its clients: the doctor makes a session per run, and parsing the EC2
    service model again for each would cost most of the suite's time."""
    monkeypatch.setattr(botocore.session, "create_loader", _shared_loader)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and region; no profile, config file, endpoint or IMDS from the host."""
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto would otherwise load ~1300 public AMIs into every fresh EC2 backend (most of the
    # suite's time); moto launches the fleets' instances without checking their AMI id.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    """An empty in-process AWS account (moto), for the length of one test."""
    with mock_aws():
        yield


@pytest.fixture
def account(aws: None) -> Account:
    return Account()
