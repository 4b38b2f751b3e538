"""The real `aws` CLI against the server (credentials from the generated file)."""

import json

from conftest import ARN_PREFIX, register, unique


def test_cli_create_and_describe_cluster(aws):
    name = unique("cli")
    created = aws.run("ecs", "create-cluster", "--cluster-name", name, "--tags", "key=team,value=ops")
    assert created["cluster"]["clusterArn"] == f"{ARN_PREFIX}:cluster/{name}"
    described = aws.run("ecs", "describe-clusters", "--clusters", name, "--include", "TAGS", "STATISTICS")
    cluster = described["clusters"][0]
    assert cluster["clusterName"] == name
    assert cluster["status"] == "ACTIVE"
    assert cluster["tags"] == [{"key": "team", "value": "ops"}]
    assert cluster["registeredContainerInstancesCount"] == 0
    assert described["failures"] == []


def test_cli_register_task_definition_from_input_json_file(aws, tmp_path):
    family = unique("clitd")
    doc = {
        "family": family,
        "networkMode": "bridge",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "nginx:1.27",
                "memory": 256,
                "cpu": 128,
                "essential": True,
                "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
                "environment": [{"name": "MODE", "value": "prod"}],
            }
        ],
        "tags": [{"key": "owner", "value": "cli"}],
    }
    path = tmp_path / "td.json"
    path.write_text(json.dumps(doc))
    out = aws.run("ecs", "register-task-definition", "--cli-input-json", f"file://{path}")
    td = out["taskDefinition"]
    assert td["taskDefinitionArn"] == f"{ARN_PREFIX}:task-definition/{family}:1"
    assert td["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 8080
    # aws-cli v1 prints the wire value (cli_timestamp_format=none); v2 renders ISO 8601.
    assert isinstance(td["registeredAt"], (int, float, str))
    described = aws.run("ecs", "describe-task-definition", "--task-definition", family, "--include", "TAGS")
    assert described["taskDefinition"]["revision"] == 1
    assert described["tags"] == [{"key": "owner", "value": "cli"}]


def test_cli_list_task_definitions_auto_paginates_past_one_hundred(aws, ecs):
    family = unique("clipg")
    total = 105
    for _ in range(total):
        register(ecs, family)
    out = aws.run("ecs", "list-task-definitions", "--family-prefix", family)
    arns = out["taskDefinitionArns"]
    assert len(arns) == total
    assert len(set(arns)) == total
    assert arns[0].endswith(f"{family}:1") and arns[-1].endswith(f"{family}:{total}")
    assert "nextToken" not in out and "NextToken" not in out
    small = aws.run("ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "7")
    assert small["taskDefinitionArns"] == arns


def test_cli_max_items_returns_resumable_token(aws, ecs):
    family = unique("climax")
    for _ in range(5):
        register(ecs, family)
    first = aws.run("ecs", "list-task-definitions", "--family-prefix", family, "--max-items", "3")
    assert len(first["taskDefinitionArns"]) == 3
    assert first["NextToken"]
    rest = aws.run("ecs", "list-task-definitions", "--family-prefix", family, "--starting-token", first["NextToken"])
    assert len(rest["taskDefinitionArns"]) == 2


def test_cli_error_is_reported_with_aws_wording(aws):
    proc = aws.run("ecs", "describe-task-definition", "--task-definition", unique("nofam"), check=False)
    assert proc.returncode != 0
    assert "An error occurred (ClientException) when calling the DescribeTaskDefinition operation" in proc.stderr


def test_cli_list_clusters_and_delete(aws):
    name = unique("clidel")
    aws.run("ecs", "create-cluster", "--cluster-name", name)
    listed = aws.run("ecs", "list-clusters")["clusterArns"]
    assert f"{ARN_PREFIX}:cluster/{name}" in listed
    deleted = aws.run("ecs", "delete-cluster", "--cluster", name)
    assert deleted["cluster"]["status"] == "INACTIVE"


def test_cli_register_container_instance_and_list(aws):
    cluster = unique("clici")
    aws.run("ecs", "create-cluster", "--cluster-name", cluster)
    out = aws.run(
        "ecs", "register-container-instance", "--cluster", cluster,
        "--total-resources",
        json.dumps([
            {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 2048},
        ]),
    )
    arn = out["containerInstance"]["containerInstanceArn"]
    listed = aws.run("ecs", "list-container-instances", "--cluster", cluster)
    assert listed["containerInstanceArns"] == [arn]
