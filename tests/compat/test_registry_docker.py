"""The registry with real clients: the seed's commands verbatim (aws ecr
get-login-password | docker login, docker tag/push/rmi/pull) and skopeo copy both ways."""

from __future__ import annotations

import subprocess

from registry_fixtures import aws_env, aws_exe, docker, ecr, need, repo, registry_password  # noqa: F401


def login(docker, server) -> None:
    host = server.endpoint.removeprefix("http://")
    # The seed's command, verbatim: aws ecr get-login-password --region R | docker login ...
    pw = subprocess.run(
        [aws_exe(), "ecr", "get-login-password", "--region", server.region],
        env=aws_env(server), capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    out = docker.run("login", "--username", "AWS", "--password-stdin", host, input=pw)
    assert "Login Succeeded" in out.stdout


def test_docker_login_tag_push_rmi_pull_run(server, docker, repo, ecr, tmp_path):
    host = server.endpoint.removeprefix("http://")
    login(docker, server)
    local = f"stevedore-test-{repo.split('/')[0]}:latest"
    docker.build(local, tmp_path, payload=b"x" * 100_000)
    remote = f"{host}/{repo}:v1"
    docker.run("tag", local, remote)
    docker.created.add(remote)
    pushed = docker.run("push", remote).stdout
    assert "digest: sha256:" in pushed
    images = ecr.describe_images(repositoryName=repo)["imageDetails"]
    assert [i["imageTags"] for i in images] == [["v1"]]
    assert images[0]["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    docker.run("rmi", remote, local)
    docker.run("pull", remote)
    out = docker.run("run", "--rm", "--label", "stevedore.test=registry", remote).stdout
    assert "hello from stevedore" in out
    # A second push of the same image is a no-op for every layer ("Layer already exists").
    again = docker.run("push", remote).stdout
    assert "already exists" in again or "Layer already exists" in again


def test_docker_push_refused_without_login_and_to_unknown_repository(server, docker, tmp_path):
    host = server.endpoint.removeprefix("http://")
    tag = f"{host}/never-created-{tmp_path.name[-6:].lower()}/x:v1"
    docker.build(tag, tmp_path)
    p = docker.run("push", tag, check=False)
    assert p.returncode != 0
    login(docker, server)
    p = docker.run("push", tag, check=False)
    assert p.returncode != 0
    assert "name unknown" in (p.stdout + p.stderr).lower() or "does not exist" in (p.stdout + p.stderr)


def test_immutable_tag_refuses_docker_push_overwrite(server, docker, repo, ecr, tmp_path):
    host = server.endpoint.removeprefix("http://")
    ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability="IMMUTABLE")
    login(docker, server)
    remote = f"{host}/{repo}:fixed"
    docker.build(remote, tmp_path, payload=b"one")
    docker.run("push", remote)
    docker.build(remote, tmp_path, payload=b"two")
    p = docker.run("push", remote, check=False)
    assert p.returncode != 0, p.stdout


def test_skopeo_copy_both_ways(server, docker, repo, ecr, registry_password, tmp_path):
    need("skopeo")
    host = server.endpoint.removeprefix("http://")
    layout = tmp_path / "layout"
    local = f"stevedore-skopeo-{repo.split('/')[0]}:v1"
    docker.build(local, tmp_path, payload=b"skopeo")
    archive = tmp_path / "img.tar"
    docker.run("save", "-o", str(archive), local)
    creds = f"AWS:{registry_password}"

    def skopeo(*args):
        p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout

    skopeo("copy", "--dest-creds", creds, "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{host}/{repo}:in")
    skopeo("copy", "--src-creds", creds, "--src-tls-verify=false", f"docker://{host}/{repo}:in", f"oci:{layout}:out")
    skopeo("copy", "--dest-creds", creds, "--dest-tls-verify=false", "--format", "oci", f"oci:{layout}:out", f"docker://{host}/{repo}:oci")
    tags = sorted(t for i in ecr.describe_images(repositoryName=repo)["imageDetails"] for t in i.get("imageTags", []))
    assert tags == ["in", "oci"]
    inspect = skopeo("inspect", "--creds", creds, "--tls-verify=false", f"docker://{host}/{repo}:oci")
    assert '"oci"' in inspect


def test_docker_push_and_pull_through_the_bearer_token_flow(docker, tmp_path):
    from conftest import StevedoreServer, make_client

    srv = StevedoreServer(tmp_path / "bearer-data", extra_env={"STEVEDORE_REGISTRY_CHALLENGE": "bearer"})
    cfg = srv.start()
    try:
        host = cfg.endpoint.removeprefix("http://")
        client = make_client(cfg, "ecr")
        client.create_repository(repositoryName="bearer/app")
        import base64
        import requests

        r = requests.get(cfg.endpoint + "/v2/", timeout=10)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer realm=")
        pw = base64.b64decode(client.get_authorization_token()["authorizationData"][0]["authorizationToken"]).decode().split(":")[1]
        docker.run("login", "--username", "AWS", "--password-stdin", host, input=pw)
        remote = f"{host}/bearer/app:v1"
        docker.build(remote, tmp_path, payload=b"bearer")
        docker.run("push", remote)
        docker.run("rmi", remote)
        docker.run("pull", remote)
        assert [i["imageTags"] for i in client.describe_images(repositoryName="bearer/app")["imageDetails"]] == [["v1"]]
    finally:
        srv.kill()
