"""The Docker Engine API over /var/run/docker.sock, for the bench scripts' Swarm and
container polling: one keep-alive connection, far cheaper to poll than the docker CLI."""
import http.client
import json
import socket
import sys
import time
import urllib.parse


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


class Engine:
    """GET requests to the Engine API (version 1.41, Docker 20.10 and later)."""

    def __init__(self, path="/var/run/docker.sock"):
        self._conn = _UnixConnection(path)

    def get(self, path, **filters):
        q = "?filters=" + urllib.parse.quote(json.dumps(filters)) if filters else ""
        self._conn.request("GET", f"/v1.41{path}{q}")
        r = self._conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit(f"docker API {path}: {r.status} {body[:200]!r}")
        return json.loads(body)

    def running_tasks(self, service, env=None):
        """Tasks of SERVICE that Swarm wants running and that run (with ENV if given)."""
        ts = self.get("/tasks", service=[service], **{"desired-state": ["running"]})
        return sum(1 for t in ts if t["Status"]["State"] == "running"
                   and (env is None or env in (t["Spec"]["ContainerSpec"].get("Env") or [])))

    def running_without(self, service, env):
        """Tasks of SERVICE in state running whose spec lacks ENV (the old ones)."""
        ts = self.get("/tasks", service=[service])
        return sum(1 for t in ts if t["Status"]["State"] == "running"
                   and env not in (t["Spec"]["ContainerSpec"].get("Env") or []))

    def update_state(self, service):
        """Swarm's own UpdateStatus.State of SERVICE (None before any update)."""
        return (self.get(f"/services/{service}").get("UpdateStatus") or {}).get("State")

    def wait_no_running_containers(self, label, timeout=300):
        """Waits until no running container carries LABEL (key=value)."""
        end = time.monotonic() + timeout
        while self.get("/containers/json", label=[label]):
            if time.monotonic() > end:
                sys.exit(f"containers labelled {label} still running after {timeout} s")
            time.sleep(0.2)
