"""cdk-nag acknowledgements: each rule that does not apply, with the reason, on its resource."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    """Acknowledge a compliance rule (cdk-nag) on ``scope``, with the reason it does not apply."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
