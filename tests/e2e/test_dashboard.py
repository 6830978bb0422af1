"""The web dashboard in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) on the real cluster: live logs, the step tree,
cancel, RBAC as the user's own, and hostile text that stays text.

Each dashboard runs as ``shipway dashboard`` from this worktree on a free loopback port,
reading the session operator's history store (conftest sets ``SHIPWAY_HISTORY``) and acting
with a kubeconfig: the cluster admin's, or a ServiceAccount's token whose Role may only read
pipelines in one namespace.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SESSION_PREFIX, _free_port
from .kube import Cluster
from .pipelines import Kubectl

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)>"
IMAGE = "busybox:1.36"
DOCS = ROOT / "docs"


def pipeline(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"services": {"app": {"image": IMAGE}}, "steps": steps, **spec},
    }


def create(k: Kubectl, body: dict[str, Any]) -> None:
    k("create", "-f", "-", stdin=json.dumps(body))


class Dashboard:
    def __init__(self, kubeconfig: Path, log: Path, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), env.get("PYTHONPATH", "")])
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipway",
                "dashboard",
                "--port",
                str(self.port),
                "--kubeconfig",
                str(kubeconfig),
                *extra,
            ],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/static/dashboard.css", timeout=2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the dashboard did not start:\n{log.read_text()}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        # shown by pytest when the test failed
        sys.stderr.write(f"dashboard log:\n{self.log.read_text(errors='replace')[-4000:]}\n")
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def k(cluster: Cluster, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


@pytest.fixture
def other_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"{SESSION_PREFIX}dash-b-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("chromium and chromium-driver are not installed: run `make host-deps`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or ""))
    yield driver
    sys.stderr.write(f"last page ({driver.current_url}):\n{driver.page_source[-6000:]}\n")
    for entry in driver.get_log("browser"):
        sys.stderr.write(f"browser console: {entry}\n")
    driver.quit()


@pytest.fixture
def admin_dashboard(
    cluster: Cluster, shipway_operator: object, tmp_path: Path
) -> Iterator[Dashboard]:
    dashboard = Dashboard(cluster.kubeconfig, tmp_path / "dashboard.log")
    yield dashboard
    dashboard.stop()


def wait(what: str, check: Callable[[], Any], timeout: float = 120, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def no_dialog(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018  (raises when there is none)
    except NoAlertPresentException:
        return True
    return False


def step_row(driver: Any, name: str) -> Any:
    from selenium.webdriver.common.by import By

    for row in driver.find_elements(By.CSS_SELECTOR, "tr.step"):
        if row.find_element(By.CSS_SELECTOR, "td.name").text == name:
            return row
    return None


def log_text(driver: Any, index: int) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_elements(By.CSS_SELECTOR, "pre.logtext")[index].text
    return text


def test_live_log_tree_hostile_text_and_cancel(
    k: Kubectl, admin_dashboard: Dashboard, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    counting = (
        f"echo '{HOSTILE}'; printf '\\033[32mgreen\\033[0m\\n'; "
        "for i in $(seq 1 12); do echo line-$i; sleep 1; done"
    )
    create(
        k,
        pipeline(
            "dash-live",
            [
                {"name": HOSTILE, "service": "app", "command": f'sh -c "{counting}"'},
                {
                    "type": "parallel",
                    "name": "checks",
                    "service": "app",
                    "steps": [
                        {"name": "after", "command": "echo done"},
                        {"name": "lint", "command": "echo lint ok"},
                    ],
                },
            ],
            ci={
                "branch": "main",
                "commitId": "3f2a9c81e0d1c0ffee5ca1ab1e0000000000beef",
                "commitMessage": f"Fix the parser {HOSTILE}",
                "committerName": "Ada Lovelace",
                "committerEmail": "ada@example.com",
            },
        ),
    )
    k.wait_for("dash-live", ("Running",), timeout=120)
    browser.get(f"{admin_dashboard.url}/runs/{k.namespace}/dash-live")
    browser.execute_script("window.notReloaded = true")
    wait("line-2 in the live log", lambda: "line-2" in log_text(browser, 0), timeout=90)
    first = log_text(browser, 0)
    assert "line-12" not in first, "the whole log at once: not live"
    wait("the log to grow to line-8", lambda: "line-8" in log_text(browser, 0), timeout=60)
    assert browser.execute_script("return window.notReloaded === true"), "the page reloaded"
    # the hostile step name and log line are text: shown as typed, no element, no dialog
    assert step_row(browser, HOSTILE) is not None
    assert HOSTILE in log_text(browser, 0)
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert browser.find_element(By.CSS_SELECTOR, ".source").text.count(HOSTILE) == 1
    assert no_dialog(browser)
    green = browser.find_elements(By.CSS_SELECTOR, "pre.logtext .ansi-fg-32")
    assert [span.text for span in green] == ["green"]
    # the step tree turns green without a reload as the steps pass
    wait(
        "every step row Succeeded",
        lambda: all(
            r.get_attribute("data-phase") == "Succeeded"
            and "phase-Succeeded"
            in r.find_element(By.CSS_SELECTOR, ".phase").get_attribute("class")
            for r in browser.find_elements(By.CSS_SELECTOR, "tr.step")
        ),
        timeout=120,
    )
    wait(
        "the run's phase Succeeded",
        lambda: browser.find_element(By.ID, "run-phase").text == "Succeeded",
    )
    assert "done" in wait("the second step's log", lambda: log_text(browser, 1), timeout=30)
    group = browser.find_element(By.CSS_SELECTOR, "tr.group .phase")
    assert group.text == "checks"
    assert "phase-Succeeded" in (group.get_attribute("class") or "")
    assert browser.execute_script("return window.notReloaded === true")
    assert no_dialog(browser)
    DOCS.mkdir(exist_ok=True)
    browser.save_screenshot(str(DOCS / "dashboard-run.png"))
    raw = browser.find_element(By.CSS_SELECTOR, "a.raw").get_attribute("href")
    with urllib.request.urlopen(raw, timeout=30) as response:
        downloaded = response.read().decode()
    assert downloaded.splitlines()[0] == HOSTILE
    assert downloaded.splitlines()[-1] == "line-12"

    # cancel on the page stops the pods
    create(k, pipeline("dash-cancel", [{"name": "wait", "service": "app", "command": "sleep 600"}]))
    k.wait_for("dash-cancel", ("Running",), timeout=120)
    browser.get(f"{admin_dashboard.url}/runs/{k.namespace}/dash-cancel")
    wait(
        "the step running on the page",
        lambda: (
            (step_row(browser, "wait") or browser.refresh())
            and step_row(browser, "wait").get_attribute("data-phase") == "Running"
        ),
        timeout=60,
    )
    browser.find_element(By.ID, "cancel").click()
    body = k.wait_for("dash-cancel", ("Cancelled",), timeout=90)
    assert body["status"]["phase"] == "Cancelled"

    def pods_stopped() -> bool:
        pods = k.json("get", "pods", "-l", "shipway.dev/pipeline=dash-cancel")["items"]
        return all(
            p["metadata"].get("deletionTimestamp") or p["status"].get("phase") != "Running"
            for p in pods
        )

    wait("the pipeline's pods stopped", pods_stopped, timeout=90)
    wait(
        "the page showing Cancelled",
        lambda: browser.find_element(By.ID, "run-phase").text == "Cancelled",
        timeout=30,
    )
    assert browser.find_elements(By.ID, "cancel") == []

    # the run list, from the history store, escaped too
    browser.get(f"{admin_dashboard.url}/?namespace={k.namespace}")
    wait(
        "dash-live in the run list",
        lambda: "dash-cancel" in browser.find_element(By.ID, "runs").text or browser.refresh(),
        timeout=60,
        every=1,
    )
    browser.save_screenshot(str(DOCS / "dashboard-list.png"))
    assert "dash-live" in browser.find_element(By.ID, "runs").text


def account_token(cluster: Cluster, namespace: str, name: str, verbs: str) -> str:
    """A ServiceAccount that may do ``verbs`` on pipelines (and read pods and logs) in
    ``namespace`` only; a token of it."""
    cluster.kubectl("create", "serviceaccount", name, "-n", namespace)
    cluster.kubectl(
        "create", "role", name, "-n", namespace, f"--verb={verbs}",
        "--resource=pipelines.shipway.dev",
    )  # fmt: skip
    cluster.kubectl(
        "create", "role", f"{name}-pods", "-n", namespace, "--verb=get,list,watch",
        "--resource=pods,pods/log",
    )  # fmt: skip
    for role in (name, f"{name}-pods"):
        cluster.kubectl(
            "create", "rolebinding", role, "-n", namespace, f"--role={role}",
            f"--serviceaccount={namespace}:{name}",
        )  # fmt: skip
    return cluster.kubectl("create", "token", name, "-n", namespace, "--duration=1h").strip()


def viewer_kubeconfig(cluster: Cluster, namespace: str, path: Path) -> Path:
    """A kubeconfig whose user may only read pipelines, pods and logs in ``namespace``."""
    token = account_token(cluster, namespace, "dash-viewer", "get,list,watch")
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "contexts": [
            {
                "name": "viewer",
                "context": {
                    "cluster": admin["clusters"][0]["name"],
                    "user": "viewer",
                    "namespace": namespace,
                },
            }
        ],
        "current-context": "viewer",
        "users": [{"name": "viewer", "user": {"token": token}}],
    }
    path.write_text(json.dumps(config))
    return path


def test_a_user_without_rights_sees_no_cancel_and_no_other_namespace(
    cluster: Cluster,
    k: Kubectl,
    other_namespace: str,
    browser: Any,
    *,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    kubeconfig = viewer_kubeconfig(cluster, k.namespace, tmp_path / "viewer.kubeconfig")
    create(k, pipeline("dash-mine", [{"name": "wait", "service": "app", "command": "sleep 600"}]))
    other = Kubectl(other_namespace)
    create(other, pipeline("dash-theirs", [{"name": "hi", "service": "app", "command": "echo hi"}]))
    k.wait_for("dash-mine", ("Running",), timeout=120)
    other.wait_for("dash-theirs", timeout=120)
    dashboard = Dashboard(kubeconfig, tmp_path / "viewer-dashboard.log")
    try:
        browser.get(f"{dashboard.url}/")
        wait(
            "dash-mine in the viewer's run list",
            lambda: "dash-mine" in browser.find_element(By.ID, "runs").text or browser.refresh(),
            timeout=60,
            every=1,
        )
        listed = browser.find_element(By.ID, "runs").text
        assert "dash-theirs" not in listed
        assert other_namespace not in listed
        browser.get(f"{dashboard.url}/?namespace={other_namespace}")
        assert "dash-theirs" not in browser.find_element(By.ID, "runs").text

        browser.get(f"{dashboard.url}/runs/{k.namespace}/dash-mine")
        assert browser.find_element(By.ID, "run-phase").text in ("Running", "Pending")
        assert browser.find_elements(By.ID, "cancel") == []

        # a forged cancel: the dashboard's own CSRF cookie and token, but no right to patch
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        run_url = f"{dashboard.url}/runs/{k.namespace}/dash-mine"
        opener.open(run_url).close()
        token = next(c.value for c in jar if c.name == "shipway_csrf")
        data = urllib.parse.urlencode({"csrf": token}).encode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(run_url + "/cancel", data=data)
        assert refused.value.code == 403
        with pytest.raises(urllib.error.HTTPError) as hidden:
            opener.open(f"{dashboard.url}/runs/{other_namespace}/dash-theirs")
        assert hidden.value.code == 403
        assert not k.pipeline("dash-mine")["spec"].get("cancel")
    finally:
        dashboard.stop()
        k("patch", "pipeline", "dash-mine", "--type=merge", "-p", '{"spec":{"cancel":true}}')


def bearer_session(token: str | None) -> tuple[Any, http.cookiejar.CookieJar]:
    """A client sending ``Authorization: Bearer token`` and keeping the dashboard's cookies."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    if token:
        opener.addheaders = [("Authorization", f"Bearer {token}")]
    return opener, jar


def csrf_form(jar: http.cookiejar.CookieJar) -> bytes:
    token = next(c.value for c in jar if c.name == "shipway_csrf")
    return urllib.parse.urlencode({"csrf": token}).encode()


def test_in_cluster_mode_acts_with_each_requests_bearer_token(
    cluster: Cluster, k: Kubectl, other_namespace: str, tmp_path: Path
) -> None:
    """--in-cluster: the dashboard's own account (here the admin's kubeconfig, more power than
    anyone) only reviews tokens and access; what a request sees and does is its token's."""
    viewer = account_token(cluster, k.namespace, "dash-viewer", "get,list,watch")
    operator = account_token(cluster, k.namespace, "dash-operator", "get,list,watch,patch")
    create(k, pipeline("dash-token", [{"name": "wait", "service": "app", "command": "sleep 600"}]))
    other = Kubectl(other_namespace)
    create(
        other, pipeline("dash-elsewhere", [{"name": "hi", "service": "app", "command": "echo hi"}])
    )
    k.wait_for("dash-token", ("Running",), timeout=120)
    other.wait_for("dash-elsewhere", timeout=120)
    dashboard = Dashboard(cluster.kubeconfig, tmp_path / "in-cluster.log", "--in-cluster")
    run_url = f"{dashboard.url}/runs/{k.namespace}/dash-token"
    try:
        for token in (None, "not-a-token"):
            client, _ = bearer_session(token)
            with pytest.raises(urllib.error.HTTPError) as refused:
                client.open(dashboard.url + "/")
            assert refused.value.code == 401

        reader, jar = bearer_session(viewer)

        def listed() -> str:
            html: str = reader.open(dashboard.url + "/").read().decode()
            return html if "dash-token" in html else ""

        assert "dash-elsewhere" not in wait("dash-token in the list", listed, 60, every=1)
        assert 'id="cancel"' not in reader.open(run_url).read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            reader.open(run_url + "/cancel", data=csrf_form(jar))
        assert refused.value.code == 403
        assert not k.pipeline("dash-token")["spec"].get("cancel")

        canceller, jar = bearer_session(operator)
        assert 'id="cancel"' in canceller.open(run_url).read().decode()
        canceller.open(run_url + "/cancel", data=csrf_form(jar)).close()  # 303, to the page
        body = k.wait_for("dash-token", ("Cancelled",), timeout=90)
        assert body["status"]["phase"] == "Cancelled"
    finally:
        dashboard.stop()
        k("patch", "pipeline", "dash-token", "--type=merge", "-p", '{"spec":{"cancel":true}}')
