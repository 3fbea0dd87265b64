# app.py: your CDK app (`cdk init app --language python`, then this file)
import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2

from gunicorn_alb import ApplicationLoadBalancedGunicornService


class WebStack(cdk.Stack):
    def __init__(self, scope, id, **kwargs):
        super().__init__(scope, id, **kwargs)
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1)
        service = ApplicationLoadBalancedGunicornService(
            self,
            "Web",
            vpc=vpc,
            idle_timeout=cdk.Duration.seconds(120),  # Gunicorn's keep-alive: 125 s
            app_directory="web",  # uploaded as an S3 asset
            wsgi_app="main:application",  # module:name, inside app_directory
        )
        # No certificate, so plain HTTP: acknowledge the construct's warning, with a reason.
        cdk.Annotations.of(self).acknowledge_warning(
            "gunicorn-alb:http-only", "a first deploy; HTTPS comes with a certificate"
        )
        cdk.CfnOutput(self, "Url", value=f"http://{service.load_balancer.load_balancer_dns_name}")


app = cdk.App()
WebStack(app, "WebStack")
app.synth()
