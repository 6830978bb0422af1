"""Token auth for the local cluster's registry (issue #30, item 3), behind
SHIPWAY_LOCALKUBE_REGISTRY_AUTH=token: what ``up`` deploys and configures with it."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "hack"))

from localkube import config  # noqa: E402
from localkube.addons.registry import server as registry  # noqa: E402
from localkube.addons.registry import token as registrytoken  # noqa: E402
from localkube.cluster import pki  # noqa: E402
from localkube.config import Paths  # noqa: E402
from localkube.errors import LocalkubeError  # noqa: E402
from shipway.controller.builder import LOCAL  # noqa: E402
from shipway.registryauth.credentials import authenticate  # noqa: E402
from shipway.registryauth.tokens import Signer  # noqa: E402


def _paths(tmp_path: Path) -> Paths:
    return Paths(cache=tmp_path / "cache", state=tmp_path / "state", run=tmp_path / "run")


def test_the_setting_is_on_unless_it_says_none() -> None:
    assert registrytoken.wanted({})
    assert registrytoken.wanted({registrytoken.SETTING: ""})
    assert not registrytoken.wanted({registrytoken.SETTING: "none"})
    assert not registrytoken.wanted({registrytoken.SETTING: "off"})
    assert registrytoken.wanted({registrytoken.SETTING: "Token"})
    with pytest.raises(LocalkubeError, match="SHIPWAY_LOCALKUBE_REGISTRY_AUTH"):
        registrytoken.wanted({registrytoken.SETTING: "htpasswd"})


def test_keys_are_made_once_private_and_the_admin_config_switches_crane(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    keys = pki.ensure(paths.pki, "192.0.2.10", "node")
    assert not registrytoken.active(paths)
    registrytoken.prepare(paths, keys)
    first = registrytoken.key_file(paths).read_bytes()
    registrytoken.prepare(paths, keys)
    assert registrytoken.key_file(paths).read_bytes() == first
    for f in (registrytoken.key_file, registrytoken.signing_key_file,
              registrytoken.admin_password_file):  # fmt: skip
        assert f(paths).stat().st_mode & 0o077 == 0
    assert registrytoken.active(paths)
    admin = json.loads((registrytoken.admin_config_dir(paths) / "config.json").read_text())
    # localkube's crane names the registry by its address; the admin's password is accepted
    entry = admin["auths"][registry.SERVICE_IP]
    password = registrytoken.admin_password_file(paths).read_text().strip()
    assert entry["username"] == "_admin"
    assert entry["password"] == password
    who = authenticate(first, password, "_admin", password)
    assert who is not None
    assert who.admin
    assert keys.crt(registrytoken.NAME).is_file()
    registrytoken.turn_off(paths)
    assert not registrytoken.active(paths)


def test_the_registry_checks_tokens_of_the_service_against_its_key(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    registrytoken.prepare(paths, pki.ensure(paths.pki, "192.0.2.10", "node"))
    jwks = registrytoken.jwks(paths)
    docs = registry.manifests(b"C", b"K", token=registrytoken.token_auth(), jwks=jwks)
    [cm] = [d for d in docs if d["kind"] == "ConfigMap"]
    for name in ("config.yml", "readonly.yml"):
        auth = yaml.safe_load(cm["data"][name])["auth"]["token"]
        assert (
            auth["realm"] == "https://registry-token.localkube-system.svc.cluster.local:5001/token"
        )
        assert auth["service"] == config.REGISTRY_HOST
        assert auth["jwks"] == "/etc/registry/jwks.json"
    signer = Signer(registrytoken.signing_key_file(paths).read_bytes())
    assert json.loads(cm["data"]["jwks.json"]) == signer.jwks()
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    template = deploy["spec"]["template"]
    [container] = template["spec"]["containers"]
    # /v2/ answers 401 to anyone without a token: the probes only connect.
    assert "tcpSocket" in container["readinessProbe"]
    assert "httpGet" not in container["livenessProbe"]
    # a new configuration restarts the pod (the ConfigMap alone would not)
    assert template["metadata"]["annotations"]["localkube.shipway.dev/auth"].startswith("token-")
    plain = registry.manifests(b"C", b"K")
    [plain_deploy] = [d for d in plain if d["kind"] == "Deployment"]
    assert "annotations" not in plain_deploy["spec"]["template"]["metadata"]
    assert "auth:" not in next(d for d in plain if d["kind"] == "ConfigMap")["data"]["config.yml"]


def test_pods_reach_the_host_process_by_the_realms_name_and_the_operator_finds_the_key() -> None:
    docs = registrytoken.manifests("192.0.2.10", b"k" * 48)
    [svc] = [d for d in docs if d["kind"] == "Service"]
    [eps] = [d for d in docs if d["kind"] == "EndpointSlice"]
    assert svc["metadata"]["name"] == registrytoken.NAME
    assert "selector" not in svc["spec"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == registrytoken.NAME
    assert eps["endpoints"][0]["addresses"] == ["192.0.2.10"]
    assert eps["ports"][0]["port"] == svc["spec"]["ports"][0]["targetPort"] == registrytoken.PORT
    assert registrytoken.REALM.startswith(f"https://{svc['metadata']['name']}.")
    [secret] = [d for d in docs if d["kind"] == "Secret"]
    assert (secret["metadata"]["namespace"], secret["metadata"]["name"]) == (
        LOCAL.client_namespace,
        LOCAL.credential_secret,
    )
    assert base64.b64decode(secret["data"]["key"]) == b"k" * 48


def test_each_namespace_is_made_before_what_lives_in_it() -> None:
    """On a new cluster the token service is applied before the registry: nothing else has
    made its namespaces yet, and kubectl applies a list in order."""
    docs = registrytoken.manifests("192.0.2.10", b"k" * 48)
    made: set[str] = set()
    for doc in docs:
        if doc["kind"] == "Namespace":
            made.add(doc["metadata"]["name"])
        else:
            assert doc["metadata"]["namespace"] in made, doc["kind"]


def test_the_node_resolves_the_realm_at_its_loopback_and_keeps_the_hosts_entries() -> None:
    host = "127.0.0.1 localhost\n10.0.0.5 build-host\n"
    text = registrytoken.node_hosts(host)
    assert "10.0.0.5 build-host" in text
    assert f"127.0.0.1 {registrytoken.HOST}" in text
    assert registrytoken.node_hosts(text).count(registrytoken.HOST) == 1


def test_the_service_runs_this_checkouts_shipway() -> None:
    paths = Paths(cache=Path("/c"), state=Path("/s"), run=Path("/r"))
    argv = registrytoken.argv(paths, pki.Pki(paths.pki, "", ""))
    assert argv[1:5] == ["-m", "shipway", "registry-token", "serve"]
    assert argv[argv.index("--service") + 1] == config.REGISTRY_HOST
    assert str(ROOT / "operator") in registrytoken.env()["PYTHONPATH"]
    # the operator's own image is public like the mirror: the chart's e2e install pulls it
    publics = [argv[i + 1] for i, a in enumerate(argv) if a == "--public-prefix"]
    assert publics == ["library/", "docker/", "shipway-dev/"]
    from localkube.addons.buildkit.build import OPERATOR_REPOSITORY

    assert OPERATOR_REPOSITORY.split("/", 1)[1].startswith(publics[2])


def test_public_prefixes_are_pulled_by_anyone_and_pushed_by_the_admin_only(
    tmp_path: Path,
) -> None:
    from shipway.registryauth.credentials import ANONYMOUS, Identity
    from shipway.registryauth.policy import grant, parse_scope
    from shipway.registryauth.server import load_settings
    from shipway.registryauth.tokens import new_key_pem

    (tmp_path / "key").write_bytes(b"k" * 32)
    (tmp_path / "signing.pem").write_bytes(new_key_pem())
    settings = load_settings(
        key_file=tmp_path / "key",
        signing_key_file=tmp_path / "signing.pem",
        service="r",
        issuer="i",
        admin_password_file=tmp_path / "absent",  # optional: no admin then
        public_prefixes=registrytoken.PUBLIC_PREFIXES,
    )
    assert settings.admin_password is None
    scope = parse_scope("repository:shipway-dev/shipway:pull,push")
    assert scope is not None
    for who in (ANONYMOUS, Identity(namespace="team-a")):
        allowed = grant(settings.policy, who, scope)
        assert allowed is not None
        assert allowed.actions == ("pull",)
    assert grant(settings.policy, Identity(admin=True), scope) == scope


def test_up_starts_the_service_names_it_on_the_node_and_applies_its_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``up``'s token step, its side effects recorded instead of run."""
    from localkube.addons import rollout as addons
    from localkube.cluster import components, host
    from localkube.cluster import lifecycle as cluster

    paths = _paths(tmp_path)
    keys = pki.ensure(paths.pki, "192.0.2.10", "node")
    lay = components.Layout(paths, keys, "192.0.2.10")
    done: list[tuple[str, Any]] = []

    def ensure(
        p: Paths,
        name: str,
        argv: Callable[[], list[str]],
        ready: object,
        *,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> None:
        done.append(("ensure", (name, argv(), env)))

    def run(argv: list[str], check: bool = True) -> SimpleNamespace:
        done.append(("run", argv))
        return SimpleNamespace(returncode=1)  # the name is not in the node's /etc/hosts yet

    def apply(p: Paths, docs: list[dict[str, Any]], what: str) -> str:
        done.append(("apply", docs))
        return ""

    monkeypatch.setenv(registrytoken.SETTING, "token")
    monkeypatch.setattr(cluster, "_ensure", ensure)
    monkeypatch.setattr(cluster, "in_node_mounts", lambda p, argv: ["nsenter", *argv])
    monkeypatch.setattr(cluster, "run", run)
    monkeypatch.setattr(addons, "apply", apply)
    monkeypatch.setattr(host, "check_ports", lambda ports: done.append(("ports", ports)))
    cluster._registry_auth(paths, lay)
    kinds = [what for what, _ in done]
    assert kinds == ["ports", "ensure", "run", "run", "apply"]
    name, argv, env = done[1][1]
    assert name == registrytoken.NAME
    assert "--tls-cert" in argv
    assert env == registrytoken.env()
    assert done[3][1] == [
        "nsenter", "mount", "--bind", str(registrytoken.node_hosts_file(paths)), "/etc/hosts"
    ]  # fmt: skip
    assert registrytoken.HOST in registrytoken.node_hosts_file(paths).read_text()
    assert registrytoken.active(paths)
    monkeypatch.setenv(registrytoken.SETTING, "none")
    done.clear()
    cluster._registry_auth(paths, lay)
    assert done == []
    assert not registrytoken.active(paths)
