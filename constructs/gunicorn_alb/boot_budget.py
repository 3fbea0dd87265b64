"""The boot budget: the time a new instance has from launch to its signal, and how the boot script
spends it. Pure Python, no CDK import; part of the timeout model (:mod:`gunicorn_alb.timeouts`).

The boot script (``userdata/boot.sh``) receives the install budget, the health wait, the signal
budget and the retry settings in ``boot.env`` and enforces each with a deadline; the construct
uses the signal timeout for the creation policy and the budget's total as the health-check grace
period. Rules (ids as in docs/deploying.md's coupled-values table):

``boot-within-signal-timeout``
    The boot budget plus the time the boot script may spend signalling CloudFormation fits in the
    creation policy's signal timeout, so a boot that fails always signals failure before
    CloudFormation gives up waiting.
``retries-within-install-budget``
    Every network step of the boot retries with a bounded exponential backoff; the waits between
    the attempts of one step stay under half the install budget, leaving the rest to the attempts.
"""

from __future__ import annotations

from dataclasses import dataclass

from gunicorn_alb.checks import TimeoutRuleError, count

SIGNAL_TIMEOUT_SECONDS = 900
"""How long CloudFormation waits for each new instance's success signal (creation policy and
rolling-update pause time): 15 minutes."""
BOOT_START_SECONDS = 90
"""Allowed from launch until the user data runs (EC2 start, the OS boot, cloud-init)."""
INSTALL_BUDGET_SECONDS = 450
"""The boot script's deadline, from its start, for every install step (dnf, pip, the app from S3),
retries included."""
HEALTH_WAIT_SECONDS = 300
"""How long the boot script waits for the health path once Gunicorn has started."""
SIGNAL_BUDGET_SECONDS = 60
"""How long the boot script may spend signalling CloudFormation (cfn-signal), retries included."""
RETRY_ATTEMPTS = 4
"""Attempts of each network step of the boot."""
RETRY_DELAY_SECONDS = 5
"""The wait after a network step's first failed attempt; it doubles after each further one."""
RETRY_MAX_DELAY_SECONDS = 40
"""The longest wait between two attempts."""


@dataclass(frozen=True)
class BootBudget:
    """The time a new instance has, from launch to its signal, in whole seconds.

    The boot script receives the install budget, the health wait, the signal budget and the retry
    settings in ``boot.env`` and enforces each with a deadline.
    """

    start: int
    install: int
    health_wait: int
    signal: int
    signal_timeout: int
    retry_attempts: int
    retry_delay: int
    retry_max_delay: int

    @property
    def total(self) -> int:
        """Launch to healthy: what the health-check grace period must cover."""
        return self.start + self.install + self.health_wait

    @property
    def retry_waits(self) -> list[int]:
        """The waits between the attempts of one network step."""
        waits, delay = [], self.retry_delay
        for _ in range(self.retry_attempts - 1):
            waits.append(delay)
            delay = min(delay * 2, self.retry_max_delay)
        return waits


def boot_budget(
    *,
    start: int = BOOT_START_SECONDS,
    install: int = INSTALL_BUDGET_SECONDS,
    health_wait: int = HEALTH_WAIT_SECONDS,
    signal: int = SIGNAL_BUDGET_SECONDS,
    signal_timeout: int = SIGNAL_TIMEOUT_SECONDS,
    retry_attempts: int = RETRY_ATTEMPTS,
    retry_delay: int = RETRY_DELAY_SECONDS,
    retry_max_delay: int = RETRY_MAX_DELAY_SECONDS,
) -> BootBudget:
    """The boot budget, checked against the signal timeout and the retry settings.

    :raises TimeoutRuleError: listing every broken rule.
    """
    problems: list[str] = []
    for name, value, low in (
        ("start", start, 0),
        ("install", install, 1),
        ("health_wait", health_wait, 1),
        ("signal", signal, 1),
        ("signal_timeout", signal_timeout, 1),
        ("retry_attempts", retry_attempts, 1),
        ("retry_delay", retry_delay, 1),
        ("retry_max_delay", retry_max_delay, 1),
    ):
        count(problems, name, value, low)
    if problems:
        raise TimeoutRuleError(problems)
    budget = BootBudget(
        start=start,
        install=install,
        health_wait=health_wait,
        signal=signal,
        signal_timeout=signal_timeout,
        retry_attempts=retry_attempts,
        retry_delay=retry_delay,
        retry_max_delay=retry_max_delay,
    )
    if budget.total + signal > signal_timeout:
        problems.append(
            f"the boot budget ({start} s to start + {install} s to install + {health_wait} s "
            f"health wait = {budget.total} s) plus {signal} s to signal exceeds the signal "
            f"timeout ({signal_timeout} s): a failed boot could not signal in time "
            "(rule boot-within-signal-timeout)"
        )
    if 2 * sum(budget.retry_waits) >= install:
        problems.append(
            f"the retry waits of one network step ({' + '.join(map(str, budget.retry_waits))} "
            f"s) must stay under half the install budget ({install} s) "
            "(rule retries-within-install-budget)"
        )
    if problems:
        raise TimeoutRuleError(problems)
    return budget


BOOT = boot_budget()
"""The boot budget every instance gets."""
