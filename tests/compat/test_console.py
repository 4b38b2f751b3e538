"""The web console in a real browser: Debian's headless Chromium driven by Playwright
(sync API) against a dedicated `stevedore server` with a real agent in cluster `default`.

The tests run in file order and share one signed-in page: sign in, see the cluster and
its instance, create a service of 2 from the console and watch both tasks reach RUNNING,
scale to 3, follow a task's logs, stop a task and see the service replace it; register a
new revision in the editor (its errors shown where they occur), update the service to it,
see the polling answered 304 while nothing changes, and run a task with overrides. Then a
read-only user is denied an action with AWS's AccessDenied text, and signed-out,
forged and expired sessions lead back to sign-in. Screenshots of each page go to
target/console-screenshots/ (printed). Under CI=true a missing Chromium or Playwright
fails; locally it skips."""
from __future__ import annotations

import fnmatch
import json
import shutil
import time
from pathlib import Path

import pytest
import requests

from agent_fixtures import (
    IMAGE,
    AgentProcess,
    build_image,
    connected_instances,
    make_cli,
    remove_cluster_containers,
    require_docker,
    wait_for,
)
from conftest import (
    ARN_PREFIX,
    REPO_ROOT,
    StevedoreServer,
    free_port,
    make_client,
    missing,
    unique,
)

SHOTS = REPO_ROOT / "target" / "console-screenshots"
CLUSTER = "default"
LOG_LINE = "hello-from-the-console-test"
UI_TIMEOUT_MS = 90_000
READ_ONLY_ECS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}],
}


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    missing("Debian's chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def playwright_browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed in the venv (pip install playwright)")
    exe = chromium_path()
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {SHOTS}")
    with sync_playwright() as p:
        # Root in CI: Chromium's own sandbox needs an unprivileged user.
        browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A server, cluster `default` and one connected agent; containers removed at the end."""
    require_docker()
    tmp = tmp_path_factory.mktemp("console")
    build_image(tmp)
    srv = StevedoreServer(tmp / "server")
    cfg = srv.start()
    aws = make_cli(cfg)
    agent = AgentProcess(cfg, CLUSTER, tmp / "agent-state", tmp / "agent.log")
    cluster_arn = f"{ARN_PREFIX}:cluster/{CLUSTER}"
    try:
        aws.run("ecs", "create-cluster", "--cluster-name", CLUSTER)
        agent.start()
        wait_for(lambda: connected_instances(aws, CLUSTER), 60, "the agent to connect", agent.log_tail)
        yield {"aws": aws, "cfg": cfg, "srv": srv, "agent": agent, "tmp": tmp}
    finally:
        try:
            agent.kill()
            srv.kill()
        finally:
            remove_cluster_containers(cluster_arn)


@pytest.fixture(scope="module")
def page(env, playwright_browser):
    context = playwright_browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(UI_TIMEOUT_MS)
    yield pg
    context.close()


def console(env, path: str = "/") -> str:
    return env["cfg"].endpoint + "/console" + path


def sign_in(pg, env, key: str, secret: str) -> None:
    pg.goto(console(env, "/"))
    pg.wait_for_url("**/console/signin**")
    pg.fill("#access_key_id", key)
    pg.fill("#secret_access_key", secret)
    pg.click("button[type=submit]")


def submit(pg, button: str, url_glob: str) -> None:
    """Clicks a form's button and waits for the page it leads to; a refusal the console
    showed instead fails with its text."""
    with pg.expect_navigation():
        pg.click(button)
    if not fnmatch.fnmatch(pg.url, url_glob):
        shown = pg.locator(".error").all_inner_texts()
        raise AssertionError(f"{button} led to {pg.url}, showing {shown}")


def shot(pg, name: str) -> None:
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_sign_in_shows_the_default_cluster_and_its_instance(env, page):
    cfg = env["cfg"]
    page.goto(console(env, "/clusters"))
    page.wait_for_url("**/console/signin**")
    shot(page, "01-signin")
    sign_in(page, env, cfg.access_key, cfg.secret_key)
    page.wait_for_url("**/console/clusters")
    shot(page, "02-clusters")
    page.click(f"text={CLUSTER}")
    page.wait_for_url(f"**/console/clusters/{CLUSTER}*")
    instance = connected_instances(env["aws"], CLUSTER)[0]
    page.get_by_text(instance["ec2InstanceId"]).wait_for()
    row = page.locator("tr", has_text=instance["ec2InstanceId"])
    assert "connected" in row.inner_text()
    shot(page, "03-cluster")


def running_card(page) -> str:
    return page.locator(".card", has_text="running").locator("b").inner_text()


def test_create_a_service_of_two_from_the_console_and_see_both_running(env, page):
    aws = env["aws"]
    family, group = unique("console"), unique("/ecs/console")
    env["family"], env["group"] = family, group
    aws.run("ecs", "register-task-definition", "--family", family, "--network-mode", "bridge",
            "--container-definitions", json.dumps([{
                "name": "app", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 1,
                "command": ["/bin/busybox", "sh", "-c", f"echo {LOG_LINE}; sleep 3600"],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": group, "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "web", "awslogs-create-group": "true"}},
            }]))
    service = unique("web")
    env["service"] = service
    page.goto(console(env, f"/clusters/{CLUSTER}"))
    page.fill("#service_name", service)
    page.fill("#task_definition", family)
    page.fill("#desired_count", "2")
    submit(page, "button:has-text('Create service')", f"**/services/{service}")
    # htmx polling refreshes the counts without a reload.
    page.locator(".card", has_text="running").locator("b", has_text="2").wait_for()
    page.locator("#live td .status.RUNNING").nth(1).wait_for()
    assert page.locator("#live td .status.RUNNING").count() == 2
    shot(page, "04-service")


def test_scale_to_three(env, page):
    page.fill("#desired_count", "3")
    page.click("text=Update")
    page.locator(".card", has_text="running").locator("b", has_text="3").wait_for()
    wait_for(lambda: page.locator("#live td .status.RUNNING").count() == 3, 60, "3 RUNNING rows")


def test_follow_a_task_log_and_see_the_line_the_container_printed(env, page):
    page.locator("#live td a").first.click()
    page.wait_for_url("**/tasks/*")
    page.locator("#log-lines", has_text=LOG_LINE).wait_for()
    env["stopped_task_url"] = page.url
    shot(page, "05-task")


def test_stop_a_task_and_see_the_service_replace_it(env, page):
    stopped = page.url.rsplit("/", 1)[1]
    page.click("text=Stop task")
    page.locator(".card", has_text="last status").locator(".status.STOPPED").wait_for()
    page.goto(console(env, f"/clusters/{CLUSTER}/services/{env['service']}"))

    def replaced():
        rows = page.locator("#live td a").all_inner_texts()
        running = page.locator("#live td .status.RUNNING").count()
        return running == 3 and stopped not in rows

    wait_for(replaced, 90, "the service to replace the stopped task")


def test_create_a_new_revision_in_the_editor_with_errors_where_they_occur(env, page):
    family = env["family"]
    page.goto(console(env, f"/task-definitions/{family}"))
    page.click("text=Create new revision")
    page.wait_for_url(f"**/task-definitions/{family}/new")
    editor = page.locator("#definition")
    text = editor.input_value()
    prefilled = json.loads(text)
    # Prefilled with the latest revision's registrable fields only.
    assert prefilled["family"] == family and "revision" not in prefilled
    assert prefilled["containerDefinitions"][0]["command"][-1].startswith(f"echo {LOG_LINE}")
    # Not JSON: the parse error names its line.
    family_line = next(i for i, line in enumerate(text.splitlines(), 1) if '"family"' in line)
    editor.fill(text.replace('"family"', '"family" "oops"', 1))
    page.click("text=Register new revision")
    alert = page.locator("#definition-error")
    assert "does not parse" in alert.inner_text(), alert.inner_text()
    assert f"At line {family_line}" in alert.inner_text(), alert.inner_text()
    # RegisterTaskDefinition's own refusal, pointed at the container it names.
    bad = json.loads(text)
    bad["containerDefinitions"][0]["memory"] = 2
    page.locator("#definition").fill(json.dumps(bad, indent=2))
    page.click("text=Register new revision")
    alert = page.locator("#definition-error", has_text="ClientException")
    alert.wait_for()
    # The line of the member the message names, in the container it names.
    assert "container 'app'" in alert.inner_text() and "\"memory\": 2" in alert.inner_text()
    shot(page, "10-editor-error")
    good = json.loads(text)
    good["containerDefinitions"][0]["command"][-1] = f"echo {LOG_LINE}-v2; sleep 3600"
    page.locator("#definition").fill(json.dumps(good, indent=2))
    submit(page, "text=Register new revision", f"**/task-definitions/{family}/2")
    assert f"{LOG_LINE}-v2" in page.locator("pre").inner_text()
    described = env["aws"].run("ecs", "describe-task-definition", "--task-definition", f"{family}:2")
    assert described["taskDefinition"]["containerDefinitions"][0]["command"] == good["containerDefinitions"][0]["command"]


def test_update_the_service_to_the_new_revision(env, page):
    aws, family, service = env["aws"], env["family"], env["service"]
    page.goto(console(env, f"/clusters/{CLUSTER}/services/{service}"))
    select = page.locator("select#task_definition")
    assert select.locator("option").count() == 2
    select.select_option(label=f"{family}:2")
    submit(page, "text=Deploy revision", f"**/services/{service}")

    def rolled():
        svc = aws.run("ecs", "describe-services", "--cluster", CLUSTER, "--services", service)["services"][0]
        deps = svc["deployments"]
        return (len(deps) == 1 and deps[0]["taskDefinition"].endswith(f"{family}:2")
                and svc["runningCount"] == 3)

    wait_for(rolled, 120, "the service to roll to revision 2")
    # The page follows without a reload.
    page.locator("#live td", has_text=f"{family}:2").first.wait_for()
    wait_for(lambda: page.locator("#live td .status.RUNNING").count() == 3, 60, "3 RUNNING rows")
    shot(page, "11-service-revision-2")


def test_polled_pages_answer_304_while_nothing_changes(env, page):
    # The live region polls every 2 s with If-None-Match; a steady service answers 304.
    statuses = []

    def polled(r) -> bool:
        if "/services/" not in r.url:
            return False
        statuses.append(r.status)
        return r.status == 304

    try:
        page.wait_for_event("response", predicate=polled, timeout=20_000)
    except Exception as e:
        raise AssertionError(f"no 304 among the polls' answers {statuses}") from e
    assert page.locator("#live td .status.RUNNING").count() == 3


def test_run_task_with_overrides(env, page):
    family = env["family"]
    page.goto(console(env, f"/task-definitions/{family}/2"))
    page.select_option("#run_cluster", CLUSTER)
    page.fill("#environment_app", "GREETING")
    page.click("button:has-text('Run task')")
    page.locator(".error", has_text="is not NAME=value").wait_for()
    page.fill("#command_app", '["/bin/busybox", "sh", "-c", "echo $GREETING-from-overrides; sleep 3600"]')
    page.fill("#environment_app", "GREETING=hello")
    submit(page, "button:has-text('Run task')", f"**/clusters/{CLUSTER}/tasks/*")
    page.locator("#log-lines", has_text="hello-from-overrides").wait_for()
    task_id = page.url.rsplit("/", 1)[1]
    task = env["aws"].run("ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", task_id)["tasks"][0]
    override = task["overrides"]["containerOverrides"][0]
    assert override["environment"] == [{"name": "GREETING", "value": "hello"}]
    assert task["startedBy"] == "stevedore-console"
    shot(page, "12-run-task-overrides")
    page.click("text=Stop task")
    page.locator(".card", has_text="last status").locator(".status.STOPPED").wait_for()


def test_a_denied_action_shows_aws_access_denied(env, page, playwright_browser):
    iam = make_client(env["cfg"], "iam")
    name = unique("reader")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(READ_ONLY_ECS))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    context = playwright_browser.new_context(viewport={"width": 390, "height": 844})
    try:
        pg = context.new_page()
        pg.set_default_timeout(UI_TIMEOUT_MS)
        sign_in(pg, env, key["AccessKeyId"], key["SecretAccessKey"])
        pg.wait_for_url("**/console/clusters")
        pg.goto(console(env, f"/clusters/{CLUSTER}/services/{env['service']}"))
        pg.fill("#desired_count", "5")
        pg.click("text=Update")
        alert = pg.locator(".error", has_text="AccessDeniedException")
        alert.wait_for()
        text = alert.inner_text()
        assert f"user/{name} is not authorized to perform: ecs:UpdateService" in text, text
        shot(pg, "06-denied-phone")
        # Reading what ECR/ELBv2 policies do not allow shows their denial too, not a blank page.
        pg.goto(console(env, "/repositories"))
        assert "AccessDeniedException" in pg.locator(".error").inner_text()
    finally:
        context.close()
    # The denied scale changed nothing.
    svc = env["aws"].run("ecs", "describe-services", "--cluster", CLUSTER, "--services",
                         env["service"])["services"][0]
    assert svc["desiredCount"] == 3


def test_task_definition_repository_and_load_balancer_pages(env, page):
    page.goto(console(env, "/task-definitions"))
    page.click(f"text={env['family']}")
    page.click(f"text={env['family']}:1")
    assert f'"family": "{env["family"]}"' in page.locator("pre").inner_text()
    shot(page, "07-task-definition")
    ecr = make_client(env["cfg"], "ecr")
    repo = unique("team/app")
    ecr.create_repository(repositoryName=repo)
    page.goto(console(env, "/repositories"))
    page.click(f"text={repo}")
    page.get_by_text("No image in this repository yet.").wait_for()
    shot(page, "08-repositories")
    page.goto(console(env, "/load-balancers"))
    page.get_by_text("aws elbv2 create-load-balancer").wait_for()
    elbv2 = make_client(env["cfg"], "elbv2")
    lb = elbv2.create_load_balancer(Name=unique("lb"), Type="application")["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name=unique("tg"), Protocol="HTTP", Port=8080, VpcId="vpc-1",
                                   TargetType="ip")["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": 9}])
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    page.reload()
    page.click(f"text={lb['LoadBalancerName']}")
    page.locator("h3", has_text=tg["TargetGroupName"]).wait_for()
    assert str(port) in page.locator("table").first.inner_text()
    page.locator("td", has_text="127.0.0.1").wait_for()
    listener = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    elbv2.create_rule(ListenerArn=listener["ListenerArn"], Priority=10,
                      Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                      Actions=[{"Type": "fixed-response",
                                "FixedResponseConfig": {"StatusCode": "404"}}])
    # The live region picks the new rule up without a reload.
    rule = page.locator("table.rules tr", has_text="path-pattern: /api/*")
    rule.wait_for()
    assert "10" in rule.inner_text() and "fixed-response" in rule.inner_text()
    assert "default" in page.locator("table.rules").inner_text()
    shot(page, "09-load-balancer")


def test_repository_lifecycle_policy_and_etags(env, page):
    ecr = make_client(env["cfg"], "ecr")
    repo = unique("team/lifecycle")
    ecr.create_repository(repositoryName=repo)
    page.goto(console(env, "/repositories"))
    page.click(f"text={repo}")
    page.get_by_text("aws ecr put-lifecycle-policy").wait_for()
    page.fill("#policy", '{"rules": [{"rulePriority": 0}]}')
    page.click("text=Save lifecycle policy")
    alert = page.locator("form .error")
    alert.wait_for()
    refused = alert.inner_text()
    assert "InvalidParameterException" in refused, refused
    # What was typed stays to be fixed.
    assert "rulePriority" in page.locator("#policy").input_value()
    policy = {"rules": [{"rulePriority": 1, "description": "keep 5",
                         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                       "countNumber": 5}, "action": {"type": "expire"}}]}
    page.fill("#policy", json.dumps(policy))
    submit(page, "text=Save lifecycle policy", "**/repositories/view?name=*")
    assert "imageCountMoreThan" in page.locator("#policy").input_value()
    got = json.loads(ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"])
    assert got == policy
    shot(page, "13-lifecycle-policy")

    # ETags, with raw HTTP: the same page answers 304 to its own tag until it changes.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    url = page.url.split("#")[0]
    first = requests.get(url, cookies=cookies, headers={"HX-Request": "true"}, timeout=10)
    assert first.status_code == 200, first.text
    tag = first.headers["ETag"]
    again = requests.get(url, cookies=cookies, headers={"If-None-Match": tag}, timeout=10)
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == tag
    policy["rules"][0]["selection"]["countNumber"] = 7
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=json.dumps(policy))
    changed = requests.get(url, cookies=cookies, headers={"If-None-Match": tag}, timeout=10)
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert "7" in changed.text


def test_posts_without_the_csrf_token_are_refused(env, page):
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    url = console(env, f"/clusters/{CLUSTER}/services/{env['service']}/scale")
    r = requests.post(url, data={"desired_count": "0"}, cookies=cookies, allow_redirects=False,
                      timeout=10)
    assert r.status_code == 403, r.text


def test_first_load_and_asset_size(env, page):
    """Numbers, printed: cold load to interactive and the bytes of the embedded assets."""
    context = page.context.browser.new_context()
    try:
        pg = context.new_page()
        sizes = []
        pg.on("response", lambda r: sizes.append(len(r.body())) if "/assets/" in r.url else None)
        pg.goto(console(env, "/signin"))
        timing = pg.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return {interactive: n.domInteractive, loaded: n.loadEventEnd}; }")
        print(f"\nconsole sign-in page: interactive {timing['interactive']:.0f} ms, "
              f"load {timing['loaded']:.0f} ms; assets {sum(sizes)} bytes uncompressed")
        assert timing["interactive"] > 0
        assert 0 < sum(sizes) < 500 * 1024
    finally:
        context.close()


def test_signed_out_and_forged_sessions_go_back_to_sign_in(env, page):
    page.click("text=Sign out")
    page.wait_for_url("**/console/signin")
    page.goto(console(env, "/clusters"))
    page.wait_for_url("**/console/signin**")
    page.context.add_cookies([{"name": "stevedore_console", "value": "0" * 64,
                               "url": env["cfg"].endpoint + "/console"}])
    page.goto(console(env, "/clusters"))
    page.wait_for_url("**/console/signin**")


def test_an_expired_session_goes_back_to_sign_in(playwright_browser, tmp_path):
    srv = StevedoreServer(tmp_path / "short", extra_env={"STEVEDORE_CONSOLE_SESSION_TTL": "2s"})
    cfg = srv.start()
    context = playwright_browser.new_context()
    try:
        pg = context.new_page()
        env = {"cfg": cfg}
        sign_in(pg, env, cfg.access_key, cfg.secret_key)
        pg.wait_for_url("**/console/clusters")
        pg.get_by_text("aws ecs create-cluster").wait_for()
        time.sleep(3)
        pg.goto(console(env, "/clusters"))
        pg.wait_for_url("**/console/signin**")
        # Wrong secret: the endpoint's refusal is shown on the form, and no session starts.
        pg.fill("#access_key_id", cfg.access_key)
        pg.fill("#secret_access_key", "wrong")
        pg.click("button[type=submit]")
        pg.locator(".error", has_text="does not match the signature you provided").wait_for()
        assert not any(c["name"] == "stevedore_console" for c in context.cookies())
    finally:
        context.close()
        srv.kill()
