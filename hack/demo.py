"""``make demo``: bring Shipway up and run the seed walkthrough, end to end, on a real cluster.

Uses the cluster of the current kube context when there is one (``KUBECONFIG`` or
``~/.kube/config``), otherwise starts the project's local cluster (building only what the demo
uses). Installs the CRD, starts the operator (out of cluster, in the background, for the
``shipway-demo`` namespace, with its admission webhook: ``demo_operator``), runs the seed walkthrough
(``shipway run --dir examples/seed-walkthrough``: its two images built by the cluster's builder,
then its steps) and shows ``kubectl get pipelines``. A cluster without a builder runs the
walkthrough with prebuilt images instead (examples/walkthrough-volumes.yaml). Safe to run again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("SHIPWAY_DEMO_STATE", "/tmp/shipway-demo"))
NAMESPACE = "shipway-demo"  # demo_operator.NAMESPACE


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
    for step in (["host-deps"], ["up", "--for", "demo"]):
        # localkube prints its own one-line error; no traceback on top of it.
        done = subprocess.run([sys.executable, "-m", "localkube", *step], cwd=ROOT, env=env)
        if done.returncode != 0:
            raise SystemExit(done.returncode)
    env["KUBECONFIG"] = str(paths.kubeconfig)
    return str(paths.bin / "kubectl"), env


def start_operator(kubectl: str, env: dict[str, str]) -> None:
    """The operator as a user runs it, webhook included (``demo_operator``); then show that
    ``kubectl apply`` of a bad Pipeline is refused with ``shipway validate``'s line."""
    import demo_operator

    pid = demo_operator.start(env, STATE)
    say(f"operator running for namespace {NAMESPACE} (pid {pid}, log {STATE / 'operator.log'})")
    refused = demo_operator.wait_for_webhook(kubectl, env)
    say("its admission webhook refuses a bad Pipeline at kubectl apply:")
    for line in refused.splitlines():
        print(f"    {line}", flush=True)


def main() -> int:
    kubectl, env = cluster_env()
    from localkube.crds import wait_established

    def k(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl, *args], env=env, check=check, text=True)

    k("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    wait_established(
        lambda *a: subprocess.run([kubectl, *a], env=env, capture_output=True, text=True).stdout,
        ["pipelines.shipway.dev"],
    )
    k("create", "namespace", NAMESPACE, check=False)
    start_operator(kubectl, env)
    if can_build(kubectl, env):
        return seed_walkthrough(kubectl, env)
    say("no image builder in this cluster: running the walkthrough with prebuilt images")
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
    _done(env)
    return 0


def can_build(kubectl: str, env: dict[str, str]) -> bool:
    """The builder the operator would use: configured, or the local cluster's (docs/builds.md)."""
    if env.get("SHIPWAY_BUILDKIT_ADDR"):
        return True
    probe = [kubectl, "-n", "shipway-buildkit", "get", "service", "shipway-buildkitd"]
    return subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0


def seed_walkthrough(kubectl: str, env: dict[str, str]) -> int:
    """The seed walkthrough as Codeship files: its two images built in the cluster, its
    services linked, the artifact written and checked (examples/seed-walkthrough)."""
    say("running the seed walkthrough (examples/seed-walkthrough): builds, then the steps")
    run_env = {**env, "PYTHONPATH": str(ROOT / "operator")}
    done = subprocess.run(
        [sys.executable, "-m", "shipway", "run", "--dir", str(ROOT / "examples" / "seed-walkthrough"),
         "--branch", "main", "-n", NAMESPACE],
        env=run_env, check=False,
    )  # fmt: skip
    subprocess.run([kubectl, "-n", NAMESPACE, "get", "pipelines"], env=env, check=False)
    if done.returncode != 0:
        return 1
    _done(env)
    return 0


def _done(env: dict[str, str]) -> None:
    print(f"\nexport KUBECONFIG={env['KUBECONFIG']}")
    print(f"kubectl -n {NAMESPACE} get pipelines   # the operator keeps running in the background")
    print(f"# it serves namespace {NAMESPACE} only, where its webhook refuses bad Pipelines")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:  # the command printed its own error
        say(f"`{' '.join(map(str, exc.cmd))}` failed (exit {exc.returncode})")
        sys.exit(1)
