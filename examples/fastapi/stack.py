"""The FastAPI example as a user would deploy it: an ASGI app from a factory, served by
uvicorn's Gunicorn worker, whose keep-alive the construct derives like any other's.

    npx cdk deploy -c example=fastapi
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from gunicorn_alb import ApplicationLoadBalancedGunicornService

APP_DIRECTORY = Path(__file__).resolve().parent / "app"


class FastApiExampleStack(cdk.Stack):
    """A VPC and the FastAPI app in ``examples/fastapi/app`` behind an ALB."""

    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1)
        self.service = ApplicationLoadBalancedGunicornService(
            self,
            "Service",
            vpc=vpc,
            app_directory=str(APP_DIRECTORY),
            wsgi_app="main:create_app()",
            worker_class="uvicorn_worker.UvicornWorker",
            environment={"APP_STAGE": "example"},
        )
        cdk.CfnOutput(
            self, "Url", value=f"http://{self.service.load_balancer.load_balancer_dns_name}"
        )
