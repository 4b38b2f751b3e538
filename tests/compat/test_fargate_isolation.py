"""Fargate isolation as AWS has it, against a `stevedore server` started without
`--fargate-sandbox`: on a host without gVisor (runsc) Fargate launches are refused with
a reason naming the flag, and the server says so when it starts; only SYS_PTRACE may be
added as a kernel capability, and privileged mode and host paths are refused, both when
a FARGATE definition is registered and when a task is launched on Fargate. Needs no
Docker."""
from __future__ import annotations

import botocore.exceptions
import pytest

from agent_fixtures import docker_offers_runsc
from conftest import StevedoreServer, default_subnet_id, make_client, unique



def network(srv) -> dict:
    """The default subnet, the VPC's default group."""
    return {"awsvpcConfiguration": {"subnets": [default_subnet_id(srv.config())],
                                    "assignPublicIp": "DISABLED"}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server with the default sandbox choice on a host without gVisor: where Docker
    offers runsc, the server is pointed at a Docker socket that does not exist, so that
    it finds no sandbox either."""
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"} if docker_offers_runsc() else {}
    server = StevedoreServer(tmp_path_factory.mktemp("fargate-isolation") / "data", extra_env=env)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ecs(srv):
    return make_client(srv.config())


def fargate_definition(family: str, container: dict, compat: str = "FARGATE", **kw) -> dict:
    return {"family": family, "requiresCompatibilities": [compat], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "app", "image": "busybox", **container}], **kw}


def refused(call, **kw) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_without_runsc_a_fargate_launch_is_refused_naming_the_flag(srv, ecs):
    assert "Fargate launches are refused" in srv.log_tail(20000)
    assert "--fargate-sandbox runc" in srv.log_tail(20000)
    cluster = unique("nosandbox")
    ecs.create_cluster(clusterName=cluster)
    family = unique("web")
    ecs.register_task_definition(**fargate_definition(family, {}))
    code, message = refused(ecs.run_task, cluster=cluster, taskDefinition=family,
                            launchType="FARGATE", networkConfiguration=network(srv))
    assert code == "ClientException"
    assert message.startswith("Capacity is unavailable at this time: "), message
    assert "--fargate-sandbox runc" in message, message
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []


def test_only_sys_ptrace_may_be_added_and_privileged_and_host_paths_are_refused(srv, ecs):
    caps = lambda *add: {"linuxParameters": {"capabilities": {"add": list(add)}}}  # noqa: E731
    code, message = refused(ecs.register_task_definition,
                            **fargate_definition(unique("caps"), caps("SYS_PTRACE", "NET_ADMIN")))
    assert code == "ClientException"
    assert message == ("Container 'app': linuxParameters.capabilities.add contains 'NET_ADMIN'; "
                       "tasks launched on Fargate only support adding the 'SYS_PTRACE' kernel "
                       "capability.")
    code, message = refused(ecs.register_task_definition,
                            **fargate_definition(unique("priv"), {"privileged": True}))
    assert (code, message) == ("ClientException",
                               "Container 'app': privileged mode is not supported on Fargate.")
    code, message = refused(ecs.register_task_definition,
                            **fargate_definition(unique("host"), {},
                                                 volumes=[{"name": "root", "host": {"sourcePath": "/"}}]))
    assert (code, message) == ("ClientException",
                               "Host volumes with a sourcePath are not supported on Fargate.")
    ok = ecs.register_task_definition(**fargate_definition(unique("ptrace"), caps("SYS_PTRACE")))
    assert ok["taskDefinition"]["requiresCompatibilities"] == ["FARGATE"]
    # An EC2 definition may add anything, but it cannot then be launched on Fargate.
    cluster = unique("caps")
    ecs.create_cluster(clusterName=cluster)
    family = unique("admin")
    ecs.register_task_definition(**fargate_definition(family, caps("SYS_ADMIN"), compat="EC2"))
    code, message = refused(ecs.run_task, cluster=cluster, taskDefinition=family,
                            launchType="FARGATE", networkConfiguration=network(srv))
    assert code == "InvalidParameterException"
    assert "only support adding the 'SYS_PTRACE' kernel capability" in message, message
