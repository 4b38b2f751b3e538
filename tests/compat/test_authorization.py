"""Every call authorized as its principal, through boto3 and the aws CLI against a real
server: an IAM user (created with the admin key, the account root) whose policy allows
`ecs:Describe*`/`ecs:List*` only can list and describe and is denied RunTask with AWS's
message; an explicit Deny beats an Allow; a denied CreateCluster creates nothing; ELBv2
(query: `AccessDenied`, 403) and Logs (JSON: `AccessDeniedException`) denials in their
protocols' shapes; iam:PassRole of a task definition's role is checked at RunTask.

Needs the IAM API (CreateUser, CreateAccessKey, PutUserPolicy) of branch `iam`.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import ACCOUNT_ID, REGION, aws_cli_path, container, make_client, unique

READ_ONLY_ECS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}],
}


@pytest.fixture(scope="module")
def iam(server):
    return make_client(server, "iam")


def user_with_policy(iam, document: dict) -> tuple[str, str, str]:
    """A new user holding `document` inline: (arn, access key id, secret)."""
    name = unique("authz")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


def client_as(server, service: str, key: str, secret: str):
    return make_client(server, service, access_key=key, secret_key=secret)


def error(info) -> tuple[int, str, str]:
    r = info.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def test_read_only_user_lists_and_describes_and_is_denied_run_task_with_aws_message(
    server, iam, ecs
):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(family=unique("f"), containerDefinitions=[container()])
    td_arn = td["taskDefinition"]["taskDefinitionArn"]
    arn, key, secret = user_with_policy(iam, READ_ONLY_ECS)
    reader = client_as(server, "ecs", key, secret)
    assert cluster in " ".join(reader.list_clusters()["clusterArns"])
    assert reader.describe_clusters(clusters=[cluster])["clusters"][0]["clusterName"] == cluster
    reader.describe_task_definition(taskDefinition=td_arn)
    with pytest.raises(reader.exceptions.AccessDeniedException) as info:
        reader.run_task(cluster=cluster, taskDefinition=td_arn)
    assert error(info) == (
        400,
        "AccessDeniedException",
        f"User: {arn} is not authorized to perform: ecs:RunTask on resource: {td_arn} "
        "because no identity-based policy allows the ecs:RunTask action",
    )
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"


def test_aws_cli_read_only_user_is_denied_run_task(server, iam, ecs):
    exe = aws_cli_path()
    if exe is None:
        pytest.skip("aws CLI not found")
    arn, key, secret = user_with_policy(iam, READ_ONLY_ECS)
    env = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    run = lambda *a: subprocess.run([exe, *a], env=env, capture_output=True, text=True, timeout=120)
    assert run("ecs", "list-clusters").returncode == 0
    denied = run("ecs", "run-task", "--task-definition", "nothing:1")
    assert denied.returncode != 0
    assert "AccessDeniedException" in denied.stderr
    assert f"User: {arn} is not authorized to perform: ecs:RunTask" in denied.stderr


def test_explicit_deny_beats_allow_and_a_denied_create_cluster_creates_nothing(server, iam, ecs):
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecs:CreateCluster", "Resource": "*"},
        ],
    }
    arn, key, secret = user_with_policy(iam, document)
    user = client_as(server, "ecs", key, secret)
    name = unique("denied")
    with pytest.raises(user.exceptions.AccessDeniedException) as info:
        user.create_cluster(clusterName=name)
    assert error(info)[2] == (
        f"User: {arn} is not authorized to perform: ecs:CreateCluster on resource: "
        f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{name} "
        "with an explicit deny in an identity-based policy"
    )
    assert ecs.describe_clusters(clusters=[name])["clusters"] == []
    user.list_clusters()


def test_elbv2_denial_is_access_denied_403_and_logs_denial_access_denied_exception(server, iam):
    arn, key, secret = user_with_policy(iam, READ_ONLY_ECS)
    elb = client_as(server, "elbv2", key, secret)
    with pytest.raises(elb.exceptions.ClientError) as info:
        elb.describe_load_balancers()
    status, code, message = error(info)
    assert (status, code) == (403, "AccessDenied")
    assert message == (
        f"User: {arn} is not authorized to perform: elasticloadbalancing:DescribeLoadBalancers "
        "on resource: * because no identity-based policy allows the "
        "elasticloadbalancing:DescribeLoadBalancers action"
    )
    logs = client_as(server, "logs", key, secret)
    group = unique("/authz/")
    with pytest.raises(logs.exceptions.ClientError) as info:
        logs.create_log_group(logGroupName=group)
    status, code, message = error(info)
    assert (status, code) == (400, "AccessDeniedException")
    assert f"on resource: arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group} " in message


def test_run_task_needs_pass_role_on_the_task_role(server, iam, ecs):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/{unique('app')}"
    td = ecs.register_task_definition(
        family=unique("f"), taskRoleArn=role, containerDefinitions=[container()]
    )["taskDefinition"]
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*"}],
    }
    arn, key, secret = user_with_policy(iam, document)
    user = client_as(server, "ecs", key, secret)
    with pytest.raises(user.exceptions.AccessDeniedException) as info:
        user.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"])
    assert error(info)[2] == (
        f"User: {arn} is not authorized to perform: iam:PassRole on resource: {role} "
        "because no identity-based policy allows the iam:PassRole action"
    )


def test_resource_tag_conditions_read_the_tags_of_the_resource_acted_on(server, iam, ecs):
    """`aws:ResourceTag/KEY` (and ECS's own `ecs:ResourceTag/KEY`, with a principal-tag
    variable) hold on the tags of the cluster, repository, log group or target group the
    call acts on, read when the call is made: a resource re-tagged by the root is allowed on
    the next call."""
    ecr = make_client(server, "ecr")
    logs = make_client(server, "logs")
    elbv2 = make_client(server, "elbv2")
    names = {team: unique(team) for team in ("blue", "red")}
    clusters, repos, groups, tgs = {}, {}, {}, {}
    for team, name in names.items():
        clusters[team] = ecs.create_cluster(
            clusterName=name, tags=[{"key": "team", "value": team}]
        )["cluster"]["clusterArn"]
        repos[team] = ecr.create_repository(
            repositoryName=name, tags=[{"Key": "team", "Value": team}]
        )["repository"]["repositoryArn"]
        logs.create_log_group(logGroupName=name, tags={"team": team})
        groups[team] = name
        tgs[team] = elbv2.create_target_group(
            Name=name[:32],
            Protocol="HTTP",
            Port=80,
            VpcId="vpc-1",
            Tags=[{"Key": "team", "Value": team}],
        )["TargetGroups"][0]["TargetGroupArn"]

    user = unique("tagged")
    arn = iam.create_user(UserName=user, Tags=[{"Key": "team", "Value": "blue"}])["User"]["Arn"]
    iam.put_user_policy(
        UserName=user,
        PolicyName="by-tag",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ecs:ListContainerInstances",
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {"ecs:ResourceTag/team": "${aws:PrincipalTag/team}"}
                        },
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "ecr:DescribeImages",
                            "logs:DescribeLogStreams",
                            "elasticloadbalancing:ModifyTargetGroup",
                        ],
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}},
                    },
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    as_user = {
        s: client_as(server, s, key["AccessKeyId"], key["SecretAccessKey"])
        for s in ("ecs", "ecr", "logs", "elbv2")
    }

    calls = {
        "ecs": lambda team: as_user["ecs"].list_container_instances(cluster=clusters[team]),
        "ecr": lambda team: as_user["ecr"].describe_images(repositoryName=names[team]),
        "logs": lambda team: as_user["logs"].describe_log_streams(logGroupName=groups[team]),
        "elbv2": lambda team: as_user["elbv2"].modify_target_group(
            TargetGroupArn=tgs[team], HealthCheckIntervalSeconds=10
        ),
    }
    resources = {
        "ecs": clusters["red"],
        "ecr": repos["red"],
        "logs": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{groups['red']}",
        "elbv2": tgs["red"],
    }
    actions = {
        "ecs": "ecs:ListContainerInstances",
        "ecr": "ecr:DescribeImages",
        "logs": "logs:DescribeLogStreams",
        "elbv2": "elasticloadbalancing:ModifyTargetGroup",
    }
    for service, call in calls.items():
        call("blue")
        with pytest.raises(as_user[service].exceptions.ClientError) as info:
            call("red")
        status, code, message = error(info)
        assert code in ("AccessDeniedException", "AccessDenied"), (service, code)
        assert message.startswith(
            f"User: {arn} is not authorized to perform: {actions[service]} on resource: "
            f"{resources[service]}"
        ), (service, message)

    # Tags are read when the call is made: re-tagged by the root, red is allowed.
    ecs.tag_resource(resourceArn=clusters["red"], tags=[{"key": "team", "value": "blue"}])
    ecr.tag_resource(resourceArn=repos["red"], tags=[{"Key": "team", "Value": "blue"}])
    logs.tag_log_group(logGroupName=groups["red"], tags={"team": "blue"})
    elbv2.add_tags(ResourceArns=[tgs["red"]], Tags=[{"Key": "team", "Value": "blue"}])
    for call in calls.values():
        call("red")
