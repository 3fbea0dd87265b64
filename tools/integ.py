"""``make integ``: run the integration test (``tests/integ/integ_reference.py``) on AWS.

It needs AWS credentials (the usual chain: ``AWS_PROFILE``, environment variables, SSO, ...) and
an account and region bootstrapped for CDK (``npx cdk bootstrap``). It costs money while it runs
(about 30 to 60 minutes: the create, a rolling update of both instances, the destroy).

1. Checks for credentials (STS ``GetCallerIdentity``); without them it says so and exits 2.
2. Checks that the committed snapshot is current (the same check ``make test`` runs offline).
3. Deploys the integ app with the pinned CDK CLI (``cdk deploy --all``): the reference stack, then
   the assertion stack, whose custom resources run the assertions in order (health path 200,
   ``IdleTimeoutSeconds`` 60 -> 120 through ``UpdateStack``, ``UPDATE_COMPLETE`` and the ALB
   attribute at 120, health path 200 again).
4. Reads every assertion result (the assertion stack's ``AssertionResults*`` outputs).
5. Destroys both stacks (``cdk destroy --all --force``), whatever happened, unless ``--keep``.

Why not ``integ-runner``: ``@aws-cdk/integ-runner`` 2.197.10, npm's latest, bundles a toolkit that
reads cloud-assembly schema 53 at most, and aws-cdk-lib 2.275 writes 55 ("Maximum schema version
supported is 53.x.x, but found 55.0.0"), so it cannot synthesize, verify or deploy this app. The
app and its snapshot keep integ-runner's layout (``IntegTest``, ``integ_reference.py.snapshot``),
so it can take over once it reads schema 55.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
INTEG_APP = ROOT / "tests" / "integ" / "integ_reference.py"
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def has_credentials() -> str | None:
    """The caller's ARN, or None when no credentials are found or they are refused."""
    import boto3  # type: ignore[import-untyped]
    import botocore.exceptions  # type: ignore[import-untyped]

    try:
        identity = boto3.client("sts").get_caller_identity()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None
    return str(identity["Arn"])


def cdk(*args: str, outdir: Path) -> int:
    command = [
        str(CDK), *args, "--app", f"{sys.executable} {INTEG_APP}", "--output", str(outdir),
        "--no-notices",
    ]  # fmt: skip
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def assertion_results(outputs_file: Path) -> list[tuple[str, str, str]]:
    """(output, status, message) of every assertion the deploy reported."""
    if not outputs_file.is_file():
        return []
    results = []
    for stack_outputs in json.loads(outputs_file.read_text()).values():
        for name, value in stack_outputs.items():
            if name.startswith("AssertionResults"):
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError:
                    parsed = {"status": "unreadable", "message": value}
                results.append((name, str(parsed.get("status")), str(parsed.get("message", ""))))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="do not destroy the stacks")
    args = parser.parse_args(argv)
    caller = has_credentials()
    if caller is None:
        print(
            "make integ deploys the reference stack to AWS and needs AWS credentials, and an "
            "account and region bootstrapped for CDK (npx cdk bootstrap). None were found: set "
            "AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and AWS_REGION. "
            "make test checks the integration test's snapshot without them.",
            file=sys.stderr,
        )
        return 2
    print(f"deploying as {caller}", flush=True)
    from tests.integ import snapshot

    stale = snapshot.check()
    if stale:
        print("\n".join(stale), file=sys.stderr)
        return 1
    os.environ.setdefault("JSII_NODE", str(ROOT / "node_modules" / ".bin" / "node"))
    with tempfile.TemporaryDirectory(prefix="integ-") as tmp:
        outdir, outputs = Path(tmp) / "cdk.out", Path(tmp) / "outputs.json"
        try:
            deployed = cdk(
                "deploy", "--all", "--require-approval", "never", "--outputs-file", str(outputs),
                outdir=outdir,
            )  # fmt: skip
            results = assertion_results(outputs)
        finally:
            destroyed = 0 if args.keep else cdk("destroy", "--all", "--force", outdir=outdir)
    for name, status, message in results:
        print(f"{status:8} {name} {message}")
    passed = deployed == 0 and results and all(status == "success" for _, status, _ in results)
    print("integration test " + ("passed" if passed else "FAILED"))
    if destroyed != 0:
        print("cdk destroy failed: delete the stacks by hand", file=sys.stderr)
    return 0 if passed and destroyed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
