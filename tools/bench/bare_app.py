"""The yardstick: a bare aws-cdk-lib ALB + ASG app (same VPC, an explicit launch template),
without the construct. The benchmark compares the reference app's synth time with this one's."""

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2

app = cdk.App()
stack = cdk.Stack(app, "Bare")
vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
security_group = ec2.SecurityGroup(stack, "InstanceSecurityGroup", vpc=vpc)
launch_template = ec2.LaunchTemplate(
    stack,
    "LaunchTemplate",
    machine_image=ec2.MachineImage.latest_amazon_linux2023(),
    instance_type=ec2.InstanceType("t3.small"),
    security_group=security_group,
    user_data=ec2.UserData.for_linux(),
)
group = autoscaling.AutoScalingGroup(
    stack, "AutoScalingGroup", vpc=vpc, launch_template=launch_template, min_capacity=2
)
alb = elbv2.ApplicationLoadBalancer(stack, "LoadBalancer", vpc=vpc, internet_facing=True)
alb.add_listener("HttpListener", port=80).add_targets("Targets", port=8000, targets=[group])
app.synth()
