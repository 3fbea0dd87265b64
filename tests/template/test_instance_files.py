"""The InstanceFiles asset: every instance file without a deploy-time value, shipped next to the
app; the user data names it by its content hash, so a changed file replaces the instances."""

from __future__ import annotations

import re

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from gunicorn_alb import ApplicationLoadBalancedGunicornService, delivery, rendering
from tests.helpers import env_value, instance_files_archive, new_stack, user_data_text

TEN_LONG_VALUES = {f"LONG_VALUE_{i}": chr(ord("a") + i) * 1000 for i in range(10)}


def test_the_asset_holds_the_files_the_user_data_does_not(reference_stack) -> None:  # type: ignore[no-untyped-def]
    template = assertions.Template.from_stack(reference_stack)
    user_data = user_data_text(template)
    archive = instance_files_archive(reference_stack, user_data)
    written, shipped = delivery.split_files(reference_stack.service.instance_config)
    assert delivery.archive_files(archive) == shipped
    assert shipped[rendering.BOOT_SCRIPT_PATH] == rendering.boot_script()
    assert set(written) == {rendering.BOOT_ENV_PATH, rendering.APP_ENV_PATH}
    # The user data writes the deploy-time files only: no script, unit or config of the asset.
    assert re.findall(r"^cat > (\S+) <<", user_data, re.M) == list(written)
    assert delivery.user_data_size_estimate(user_data) < 4 * 1024


@pytest.fixture(scope="module")
def two_services() -> tuple[assertions.Template, dict[str, str]]:
    """One stack, two services that differ in a shipped file only (gunicorn.conf.py's workers per
    CPU), both with ten environment values of 1000 characters."""
    stack, vpc = new_stack()
    services = {
        name: ApplicationLoadBalancedGunicornService(
            stack, name, vpc=vpc, workers_per_cpu=workers, environment=TEN_LONG_VALUES
        )
        for name, workers in (("Two", 2), ("Three", 3))
    }
    template = assertions.Template.from_stack(stack)
    return template, {
        name: user_data_text(
            template, stack.get_logical_id(service.launch_template.node.default_child)
        )
        for name, service in services.items()
        if isinstance(service.launch_template.node.default_child, cdk.CfnElement)
    }


def test_a_changed_shipped_file_changes_the_user_data(two_services) -> None:  # type: ignore[no-untyped-def]
    """The rolling update replaces the instances on any change of the launch template: a file
    of the asset changes the asset's key, which is in the user data."""
    _, user_data = two_services
    two, three = user_data["Two"], user_data["Three"]
    assert env_value(two, "INSTANCE_FILES_URL") != env_value(three, "INSTANCE_FILES_URL")
    # Else they differ only in their own resources' ids (the signal's resource, the refs).
    others = [
        re.sub(
            r"\{\{.*?\}\}|^CFN_RESOURCE=.*$",
            "ID",
            re.sub(r"^INSTANCE_FILES_URL=.*$", "", text, flags=re.M),
            flags=re.M,
        )
        for text in (two, three)
    ]
    assert others[0] == others[1]


def test_ten_environment_values_of_1000_characters_synthesize(two_services) -> None:  # type: ignore[no-untyped-def]
    """The environment budget (10 KB, docs/your-app.md) holds ten values of 1000 characters."""
    _, user_data = two_services
    app_env = delivery.parse_env(
        delivery.written_file(user_data["Two"], rendering.APP_ENV_PATH) or ""
    )
    assert app_env == TEN_LONG_VALUES
    assert delivery.user_data_size_estimate(user_data["Two"]) <= delivery.USER_DATA_LIMIT


def test_fails_when_the_environment_is_over_the_user_datas_room() -> None:
    stack, vpc = new_stack()
    environment = {f"VALUE_{i}": "v" * 4096 for i in range(4)}
    with pytest.raises(
        ValueError,
        match=r"the user data would be about \d+ bytes, over EC2's limit of 16384: environment "
        r"takes about 16\d\d\d bytes of it \(its budget is 10240 bytes",
    ):
        ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, environment=environment)
