# your_app.py: the app's configuration, secrets, a factory and a release step
import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from gunicorn_alb import ApplicationLoadBalancedGunicornService, Secret


class ConfiguredStack(cdk.Stack):
    def __init__(self, scope, id, **kwargs):
        super().__init__(scope, id, **kwargs)
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1)
        # --8<-- [start:service]
        db_secret = secretsmanager.Secret.from_secret_name_v2(self, "Db", "prod/db")
        secret_key = ssm.StringParameter.from_secure_string_parameter_attributes(
            self, "SecretKey", parameter_name="/mysite/secret-key"
        )
        service = ApplicationLoadBalancedGunicornService(
            self,
            "Web",
            vpc=vpc,
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
        )
        # --8<-- [end:service]
        cdk.Annotations.of(self).acknowledge_warning("gunicorn-alb:http-only", "an example")
        cdk.CfnOutput(self, "GroupName", value=service.auto_scaling_group.auto_scaling_group_name)


app = cdk.App()
ConfiguredStack(app, "ConfiguredStack")
app.synth()
