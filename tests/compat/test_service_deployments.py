"""Service deployment history through boto3 and the aws CLI on hollow instances
(`stevedore sim`): ListServiceDeployments, DescribeServiceDeployments,
DescribeServiceRevisions and StopServiceDeployment with ROLLBACK, the service's
`currentServiceDeployment` / `currentServiceRevisions`, and AWS's errors."""

from __future__ import annotations

import botocore.exceptions
import pytest

from conftest import container, register, unique
from sim_fixtures import Sim
from test_services import describe, steady, wait_service


def error_code(fn, **kw) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def history(ecs, cluster: str, name: str) -> list[dict]:
    """The service's deployments, newest first, through the paginator."""
    # botocore has no paginator for it: page by hand, one a page, to exercise nextToken.
    out: list[dict] = []
    kw: dict = {}
    while True:
        page = ecs.list_service_deployments(cluster=cluster, service=name, maxResults=1, **kw)
        out.extend(page["serviceDeployments"])
        if "nextToken" not in page:
            return out
        kw = {"nextToken": page["nextToken"]}


def wait_status(ecs, arn: str, status: str, timeout: float = 90) -> dict:
    import time

    deadline = time.monotonic() + timeout
    d = {}
    while time.monotonic() < deadline:
        d = ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
        if d["status"] == status:
            return d
        time.sleep(0.3)
    raise AssertionError(f"deployment {arn} did not reach {status}: {d.get('status')} {d.get('statusReason')}")


def test_deployments_and_revisions_are_recorded_and_a_stop_rolls_back(server, ecs, aws):
    fam = unique("hist")
    td1 = register(ecs, family=fam, containerDefinitions=[container(memory=64)])["taskDefinitionArn"]
    td2 = register(ecs, family=fam, containerDefinitions=[container(memory=64, environment=[{"name": "V", "value": "2"}])])["taskDefinitionArn"]
    # A health check hollow instances never pass: this deployment never completes, so it
    # is still in progress when it is stopped.
    check = {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "timeout": 2, "retries": 1}
    td3 = register(ecs, family=fam, containerDefinitions=[container(memory=64, healthCheck=check)])["taskDefinitionArn"]
    with Sim(server, ecs, instances=2) as sim:
        name = unique("hist")
        created = ecs.create_service(cluster=sim.cluster, serviceName=name, taskDefinition=td1, desiredCount=2)["service"]
        service_arn = created["serviceArn"]
        assert created["currentServiceDeployment"].startswith(f"arn:aws:ecs:{server.region}:")
        assert f":service-deployment/{sim.cluster}/{name}/" in created["currentServiceDeployment"]
        wait_service(ecs, sim.cluster, name, steady)
        ecs.update_service(cluster=sim.cluster, service=name, taskDefinition=td2)
        s = wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["taskDefinition"] == td2, what="second deployment")

        listed = history(ecs, sim.cluster, name)
        assert [d["status"] for d in listed] == ["SUCCESSFUL", "SUCCESSFUL"], listed
        newest, oldest = listed
        assert newest["createdAt"] >= oldest["createdAt"]
        assert newest["serviceArn"] == service_arn and newest["clusterArn"] == created["clusterArn"]
        assert s["currentServiceDeployment"] == newest["serviceDeploymentArn"]
        [current] = s["currentServiceRevisions"]
        assert current["arn"] == newest["targetServiceRevisionArn"]
        assert current["runningTaskCount"] == 2 and current["requestedTaskCount"] == 2

        described = ecs.describe_service_deployments(serviceDeploymentArns=[d["serviceDeploymentArn"] for d in listed])
        assert described["failures"] == []
        second = described["serviceDeployments"][0]
        assert second["targetServiceRevision"]["arn"] == newest["targetServiceRevisionArn"]
        assert [r["arn"] for r in second["sourceServiceRevisions"]] == [oldest["targetServiceRevisionArn"]]
        assert second["deploymentCircuitBreaker"]["status"] == "DISABLED"
        assert "finishedAt" in second and "startedAt" in second

        revisions = ecs.describe_service_revisions(serviceRevisionArns=[oldest["targetServiceRevisionArn"], newest["targetServiceRevisionArn"]])
        assert revisions["failures"] == []
        assert [r["taskDefinition"] for r in revisions["serviceRevisions"]] == [td1, td2]
        assert all(r["launchType"] == "EC2" and r["serviceArn"] == service_arn for r in revisions["serviceRevisions"])
        assert f":service-revision/{sim.cluster}/{name}/" in revisions["serviceRevisions"][0]["serviceRevisionArn"]

        # Only SUCCESSFUL ones are listed when asked; none are IN_PROGRESS.
        assert len(ecs.list_service_deployments(cluster=sim.cluster, service=name, status=["SUCCESSFUL"])["serviceDeployments"]) == 2
        assert ecs.list_service_deployments(cluster=sim.cluster, service=name, status=["IN_PROGRESS"])["serviceDeployments"] == []

        # A finished deployment cannot be stopped.
        assert error_code(ecs.stop_service_deployment, serviceDeploymentArn=newest["serviceDeploymentArn"], stopType="ROLLBACK") == "ConflictException"

        # The third deployment, stopped with ROLLBACK through the aws CLI, rolls back to
        # the second revision.
        ecs.update_service(cluster=sim.cluster, service=name, taskDefinition=td3)
        third = history(ecs, sim.cluster, name)[0]
        assert third["status"] == "IN_PROGRESS"
        out = aws.run("ecs", "stop-service-deployment", "--service-deployment-arn", third["serviceDeploymentArn"], "--stop-type", "ROLLBACK")
        assert out["serviceDeploymentArn"] == third["serviceDeploymentArn"]
        d = wait_status(ecs, third["serviceDeploymentArn"], "ROLLBACK_SUCCESSFUL")
        assert d["rollback"]["serviceRevisionArn"] == newest["targetServiceRevisionArn"]
        assert "startedAt" in d["rollback"] and d["rollback"]["reason"]
        s = wait_service(ecs, sim.cluster, name, lambda s: steady(s) and s["taskDefinition"] == td2, what="rollback")

        cli = aws.run("ecs", "list-service-deployments", "--cluster", sim.cluster, "--service", name)
        assert [x["status"] for x in cli["serviceDeployments"]] == ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL", "SUCCESSFUL"]
        cli = aws.run("ecs", "describe-service-revisions", "--service-revision-arns", third["targetServiceRevisionArn"])
        assert cli["serviceRevisions"][0]["taskDefinition"] == td3


def test_service_deployment_errors_are_aws_shaped(server, ecs):
    td = register(ecs, containerDefinitions=[container(memory=64)])["taskDefinitionArn"]
    cluster = unique("histerr")
    ecs.create_cluster(clusterName=cluster)
    name = unique("svc")
    svc = ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=0)["service"]
    prefix = f"arn:aws:ecs:{server.region}:{svc['serviceArn'].split(':')[4]}"

    assert error_code(ecs.list_service_deployments, cluster=cluster, service="nope") == "ServiceNotFoundException"
    assert error_code(ecs.list_service_deployments, cluster=unique("nocluster"), service=name) == "ClusterNotFoundException"
    assert error_code(ecs.list_service_deployments, cluster=cluster, service=name, maxResults=101) == "InvalidParameterException"
    assert error_code(ecs.describe_service_deployments, serviceDeploymentArns=["not-an-arn"]) == "InvalidParameterException"
    assert error_code(ecs.describe_service_deployments, serviceDeploymentArns=[f"{prefix}:service-revision/{cluster}/{name}/1"]) == "InvalidParameterException"
    assert error_code(ecs.describe_service_revisions, serviceRevisionArns=[f"{prefix}:service/{cluster}/{name}"]) == "InvalidParameterException"
    assert error_code(ecs.describe_service_revisions, serviceRevisionArns=[]) == "InvalidParameterException"
    assert error_code(ecs.stop_service_deployment, serviceDeploymentArn="arn:aws:ecs:bad") == "InvalidParameterException"
    missing = f"{prefix}:service-deployment/{cluster}/{name}/AAAAAAAAAAAAAAAAAAAAAA"
    assert error_code(ecs.stop_service_deployment, serviceDeploymentArn=missing, stopType="ROLLBACK") == "ServiceDeploymentNotFoundException"

    # Unknown ARNs of the right form are failures, not errors.
    out = ecs.describe_service_deployments(serviceDeploymentArns=[missing])
    assert out["serviceDeployments"] == [] and out["failures"] == [{"arn": missing, "reason": "MISSING"}]
    rev = f"{prefix}:service-revision/{cluster}/{name}/1234567890123456789"
    out = ecs.describe_service_revisions(serviceRevisionArns=[rev])
    assert out["serviceRevisions"] == [] and out["failures"] == [{"arn": rev, "reason": "MISSING"}]

    # The first deployment has no previous revision to roll back to; ABORT is refused.
    [first] = ecs.list_service_deployments(cluster=cluster, service=name)["serviceDeployments"]
    assert first["status"] in ("IN_PROGRESS", "SUCCESSFUL")
    assert error_code(ecs.stop_service_deployment, serviceDeploymentArn=first["serviceDeploymentArn"], stopType="ABORT") == "InvalidParameterException"
    assert error_code(ecs.stop_service_deployment, serviceDeploymentArn=first["serviceDeploymentArn"], stopType="ROLLBACK") == "ConflictException"
    assert describe(ecs, cluster, name)["currentServiceDeployment"] == first["serviceDeploymentArn"]
