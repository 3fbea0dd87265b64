# instances.py: Graviton, a pinned image, and private subnets without a NAT gateway
import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from gunicorn_alb import ApplicationLoadBalancedGunicornService
from gunicorn_alb.network import PrivateEndpoints


class IsolatedStack(cdk.Stack):
    def __init__(self, scope, id, **kwargs):
        super().__init__(scope, id, **kwargs)
        # --8<-- [start:isolated]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="app", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
                ),
            ],
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        PrivateEndpoints(self, "Endpoints", vpc=vpc, subnets=isolated)
        # --8<-- [end:isolated]
        service = ApplicationLoadBalancedGunicornService(
            self,
            "Web",
            vpc=vpc,
            vpc_subnets=isolated,
            app_directory="web",
            wsgi_app="main:application",
            # --8<-- [start:graviton]
            instance_type=ec2.InstanceType("t4g.small"),  # arm64: the image and the wheels
            # --8<-- [end:graviton]
            # --8<-- [start:pinned]
            machine_image=ec2.MachineImage.generic_linux({"eu-west-1": "ami-0123456789abcdef0"}),
            # --8<-- [end:pinned]
        )
        cdk.Annotations.of(self).acknowledge_warning("gunicorn-alb:http-only", "an example")
        cdk.CfnOutput(self, "Url", value=service.load_balancer.load_balancer_dns_name)


app = cdk.App()
IsolatedStack(app, "IsolatedStack")
app.synth()
