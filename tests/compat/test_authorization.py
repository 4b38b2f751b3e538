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
