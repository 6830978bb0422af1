"""``make demo``: bring Shipway up and run the walkthrough, end to end, on a real cluster.

Uses the cluster of the current kube context when there is one (``KUBECONFIG`` or
``~/.kube/config``), otherwise starts the project's local cluster. Installs the CRD, starts the
operator (out of cluster, in the background, for every namespace), applies the walkthrough and
shows ``kubectl get pipelines`` once it has Succeeded. Safe to run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("SHIPWAY_DEMO_STATE", "/tmp/shipway-demo"))
NAMESPACE = "shipway-demo"


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def _reachable(kubectl: str, env: dict[str, str]) -> bool:
    probe = [kubectl, "get", "--raw", "/readyz", "--request-timeout=5s"]
    return subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0


def cluster_env() -> tuple[str, dict[str, str]]:
    """kubectl and the environment to run it with: the user's context, else the local cluster."""
    env = dict(os.environ)
    user_config = env.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    sys.path.insert(0, str(ROOT / "hack"))
    from localkube.config import Paths

    paths = Paths.default()
    local_kubectl = paths.bin / "kubectl"
    kubectl = str(local_kubectl) if local_kubectl.exists() else "kubectl"
    if Path(user_config).exists() and str(paths.kubeconfig) != user_config:
        env["KUBECONFIG"] = user_config
        if _reachable(kubectl, env):
            say(f"using the current kube context ({user_config})")
            return kubectl, env
    say("starting the local cluster (the first run builds Kubernetes: see docs/local-cluster.md)")
    for step in (["host-deps"], ["up"]):
        # localkube prints its own one-line error; no traceback on top of it.
        done = subprocess.run([sys.executable, "-m", "localkube", *step], cwd=ROOT, env=env)
        if done.returncode != 0:
            raise SystemExit(done.returncode)
    env["KUBECONFIG"] = str(paths.kubeconfig)
    return str(paths.bin / "kubectl"), env


def start_operator(env: dict[str, str]) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    pidfile = STATE / "operator.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
            time.sleep(1)
        except (ProcessLookupError, ValueError):
            pass
    log = (STATE / "operator.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "shipway", "operator", "--all-namespaces"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pidfile.write_text(str(process.pid))
    say(f"operator running (pid {process.pid}, log {STATE / 'operator.log'})")


def main() -> int:
    kubectl, env = cluster_env()

    def k(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl, *args], env=env, check=check, text=True)

    k("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    k("wait", "--for=condition=Established", "crd/pipelines.shipway.dev", "--timeout=60s")
    start_operator(env)
    k("create", "namespace", NAMESPACE, check=False)
    k("-n", NAMESPACE, "delete", "pipeline", "volumes-demo", "--ignore-not-found", "--wait=true")
    k("-n", NAMESPACE, "apply", "-f", str(ROOT / "examples" / "walkthrough-volumes.yaml"))
    waited = k(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Succeeded",
        "pipeline/volumes-demo",
        "--timeout=300s",
        check=False,
    )
    k("-n", NAMESPACE, "get", "pipelines")
    if waited.returncode != 0:
        k("-n", NAMESPACE, "describe", "pipeline", "volumes-demo", check=False)
        return 1
    print(f"\nexport KUBECONFIG={env['KUBECONFIG']}")
    print(f"kubectl -n {NAMESPACE} get pipelines   # the operator keeps running in the background")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:  # the command printed its own error
        say(f"`{' '.join(map(str, exc.cmd))}` failed (exit {exc.returncode})")
        sys.exit(1)
