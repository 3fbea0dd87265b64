# production.py: a production stack: the app's configuration and secrets, a factory, a release
# step; Graviton, a pinned image, private subnets without a NAT gateway; an alarm-gated roll.
import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm

from gunicorn_alb import ApplicationLoadBalancedGunicornService, Secret
from gunicorn_alb.network import PrivateEndpoints


class ProductionStack(cdk.Stack):
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
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            ],
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        endpoints = PrivateEndpoints(self, "Endpoints", vpc=vpc, subnets=isolated)
        # --8<-- [end:isolated]
        # --8<-- [start:service]
        db_secret = secretsmanager.Secret.from_secret_name_v2(self, "Db", "prod/db")
        secret_key = ssm.StringParameter.from_secure_string_parameter_attributes(
            self, "SecretKey", parameter_name="/mysite/secret-key"
        )
        service = ApplicationLoadBalancedGunicornService(
            self,
            "Web",
            vpc=vpc,
            vpc_subnets=isolated,
            app_directory="web",
            wsgi_app='main:create_app("Welcome")',  # a factory call, literal arguments
            environment={  # plain values; tokens (an endpoint, an ARN) are fine
                "APP_STAGE": "production",
                "BUCKET_NAME": "my-bucket",
            },
            secrets={  # read on the instance at boot, never in the template
                "DATABASE_PASSWORD": Secret.from_secrets_manager(db_secret, field="password"),
                "SECRET_KEY": Secret.from_ssm_parameter(secret_key),
            },
            pre_start_command="python -c 'import main'",  # the release step, on each instance
            # --8<-- [start:graviton]
            instance_type=ec2.InstanceType("t4g.small"),  # arm64: the image and the wheels
            # --8<-- [end:graviton]
            # --8<-- [start:pinned]
            machine_image=ec2.MachineImage.generic_linux({"eu-west-1": "ami-0123456789abcdef0"}),
            # --8<-- [end:pinned]
        )
        # --8<-- [end:service]
        # --8<-- [start:endpoints-first]
        service.auto_scaling_group.node.add_dependency(endpoints)  # no instance before them
        # --8<-- [end:endpoints-first]
        cdk.Annotations.of(self).acknowledge_warning("gunicorn-alb:http-only", "an example")
        cdk.CfnOutput(self, "GroupName", value=service.auto_scaling_group.auto_scaling_group_name)
        my_deploy_502_alarm = cloudwatch.Alarm(
            self,
            "Deploy502",
            metric=service.load_balancer.metrics.http_code_elb(
                code=elbv2.HttpCodeElb.ELB_5XX_COUNT, period=cdk.Duration.minutes(1)
            ),
            threshold=20,
            evaluation_periods=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # --8<-- [start:refresh]
        cfn_asg = service.auto_scaling_group.node.default_child
        cfn_asg.cfn_options.update_policy = cdk.CfnUpdatePolicy(
            auto_scaling_instance_refresh=cdk.CfnAutoScalingInstanceRefresh(
                strategy="Rolling",
                preferences=cdk.CfnAutoScalingInstanceRefreshPreferences(
                    min_healthy_percentage=100,
                    max_healthy_percentage=150,
                    instance_warmup=300,
                    bake_time=600,
                    alarm_specification=cdk.CfnAutoScalingInstanceRefreshAlarmSpecification(
                        alarms=[
                            service.monitoring.alarms["UnhealthyHostAlarm"].alarm_name,
                            my_deploy_502_alarm.alarm_name,
                        ]
                    ),
                ),
            )
        )
        # --8<-- [end:refresh]


app = cdk.App()
ProductionStack(app, "ProductionStack")
app.synth()
