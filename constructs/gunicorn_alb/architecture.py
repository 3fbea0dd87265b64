"""The instances' processor architecture: it picks the Amazon Linux 2023 image (x86_64 or arm64)
and the wheels of the wheelhouse (x86_64 or aarch64), and every part must agree on it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

DEFAULT_INSTANCE_TYPE = "t3.small"
"""x86_64: the boot check runs the default's own wheels on x86_64 machines, and every package
publishes x86_64 wheels; ``t4g.small`` (Graviton, about 20 % cheaper) is one argument away."""

_MACHINES = {
    ec2.InstanceArchitecture.X86_64: "x86_64",
    ec2.InstanceArchitecture.ARM_64: "aarch64",
}
_CPU_TYPES = {
    "x86_64": ec2.AmazonLinuxCpuType.X86_64,
    "aarch64": ec2.AmazonLinuxCpuType.ARM_64,
}
# How an image id names its architecture once resolved: SSM parameter names of the public AMIs
# (``.../al2023-ami-kernel-default-arm64``) and the logical ids CDK derives from them.
_IMAGE_NAMES = (
    (re.compile(r"arm64|aarch64", re.IGNORECASE), "aarch64"),
    (re.compile(r"x86_64|x8664", re.IGNORECASE), "x86_64"),
)


def machine_of(instance_type: ec2.InstanceType) -> str:
    """``uname -m`` of an instance type: ``x86_64`` or ``aarch64`` (Graviton)."""
    return _MACHINES[instance_type.architecture]


def default_instance_type() -> ec2.InstanceType:
    return ec2.InstanceType(DEFAULT_INSTANCE_TYPE)


def default_machine_image(machine: str) -> ec2.IMachineImage:
    """The latest Amazon Linux 2023 for the machine (SSM public parameter, read at deploy)."""
    return ec2.MachineImage.latest_amazon_linux2023(cpu_type=_CPU_TYPES[machine])


def image_machine(scope: Construct, image: ec2.IMachineImage) -> str | None:
    """The machine an image is built for, when its id says so (the latest Amazon Linux images by
    SSM parameter); None for an AMI id, a region map or a lookup: nothing to check there."""
    image_id = image.get_image(scope).image_id
    text = json.dumps(cdk.Stack.of(scope).resolve(image_id))
    for pattern, machine in _IMAGE_NAMES:
        if pattern.search(text):
            return machine
    return None


def check_architecture(
    scope: Construct,
    instance_types: Sequence[ec2.InstanceType],
    machine_image: ec2.IMachineImage | None,
) -> list[str]:
    """Problems: instance types of different architectures, or an image for another one."""
    machines = {machine_of(t) for t in instance_types}
    if len(machines) > 1:
        listed = ", ".join(f"{t.to_string()} ({machine_of(t)})" for t in instance_types)
        return [
            f"instance_types must share one architecture (one image, one wheelhouse), got {listed}"
        ]
    if machine_image is None or not machines:
        return []
    (machine,) = machines
    image = image_machine(scope, machine_image)
    if image is None or image == machine:
        return []
    cpu = "ARM_64" if machine == "aarch64" else "X86_64"
    name = ", ".join(t.to_string() for t in instance_types)
    argument = "instance_type" if len(instance_types) == 1 else "instance_types"
    return [
        f"machine_image is an {image} image, but {argument} {name} is {machine}: "
        "leave machine_image unset (the latest Amazon Linux 2023 for the instance type) or use "
        f"ec2.MachineImage.latest_amazon_linux2023(cpu_type=ec2.AmazonLinuxCpuType.{cpu})"
    ]
