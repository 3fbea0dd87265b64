# rollout.py: opt in to an alarm-gated instance refresh instead of the signalled rolling update
import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from gunicorn_alb import ApplicationLoadBalancedGunicornService


class GatedStack(cdk.Stack):
    def __init__(self, scope, id, **kwargs):
        super().__init__(scope, id, **kwargs)
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1)
        service = ApplicationLoadBalancedGunicornService(
            self, "Web", vpc=vpc, app_directory="web", wsgi_app="main:application"
        )
        cdk.Annotations.of(self).acknowledge_warning("gunicorn-alb:http-only", "an example")
        my_deploy_502_alarm = cloudwatch.Alarm(
            self,
            "Deploy502",
            metric=service.load_balancer.metrics.http_code_elb(
                code=cdk.aws_elasticloadbalancingv2.HttpCodeElb.ELB_5XX_COUNT,
                period=cdk.Duration.minutes(1),
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
GatedStack(app, "GatedStack")
app.synth()
