"""The admission webhook's decisions and configuration, without a cluster.

The webhook must say what ``shipway validate`` says, word for word; its own configuration
(development mode) must cover exactly the operator's namespaces, with kopf's glob semantics.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf._cogs.structs.references import NamespaceName, match_namespace

from shipway.cli import main
from shipway.compiler.limits import read_deep
from shipway.controller import admission, webhookconfig
from tests.unit.compiler.test_bad_corpus import FILES

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _doc(path: Path) -> dict[str, Any]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    doc = read_deep(lambda: yaml.safe_load(text))
    assert isinstance(doc, dict)
    return doc


def _validate_lines(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    main(["validate", str(path)])
    out = capsys.readouterr().out.splitlines()
    return [line.removeprefix(f"{path}: ") for line in out]


async def _call(fn: admission.WebhookFn, request: dict[str, Any]) -> dict[str, Any]:
    """The webhook function's answer (``asyncio.run`` takes a coroutine, not an awaitable)."""
    return await fn(request)


def _webhook_says(doc: dict[str, Any]) -> str | None:
    """What the webhook answers for a CREATE of ``doc``: None to admit, else its message."""

    async def kopf_review(request: dict[str, Any], **_: Any) -> dict[str, Any]:
        body = request["request"]["object"]
        try:
            await admission.validate_pipeline(kopf.Body(body))
        except kopf.AdmissionError as exc:
            return {"response": {"allowed": False, "status": {"message": str(exc)}}}
        return {"response": {"allowed": True}}

    request = {"apiVersion": "admission.k8s.io/v1", "request": {"uid": "1", "object": doc}}
    answer: dict[str, Any] = asyncio.run(_call(admission.screened(kopf_review), request))
    response = answer["response"]
    return None if response["allowed"] else str(response["status"]["message"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_webhook_says_what_shipway_validate_prints(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file validate refuses, the webhook refuses with the same lines; none it admits."""
    printed = _validate_lines(path, capsys)
    said = _webhook_says(_doc(path))
    if printed[0].endswith("is invalid:"):
        assert said is not None
        assert said.splitlines() == printed
    else:
        assert said is None


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_webhook_admits_every_example(path: Path) -> None:
    docs = yaml.safe_load_all(path.read_text())
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "Pipeline":
            assert _webhook_says(doc) is None


def test_deep_specs_are_answered_without_kopf() -> None:
    """kopf copies the object recursively before handlers run: too deep, it never sees it."""
    step: dict[str, Any] = {"service": "a"}
    for _ in range(3000):
        step = {"type": "serial", "steps": [step]}
    doc = {"metadata": {"name": "Deep"}, "spec": {"services": {"a": {}}, "steps": [step]}}
    called = []

    async def kopf_review(request: dict[str, Any], **_: Any) -> dict[str, Any]:
        called.append(request)
        return {}

    answer: dict[str, Any] = asyncio.run(
        _call(admission.screened(kopf_review), {"request": {"uid": "u-1", "object": doc}})
    )
    assert called == []
    response = answer["response"]
    assert response["uid"] == "u-1"
    assert response["allowed"] is False
    lines = response["status"]["message"].splitlines()
    assert lines[0] == "Pipeline Deep is invalid:"
    assert lines[1].startswith("  metadata.name: 'Deep'")  # the name first, as validate says
    assert lines[2].endswith(".steps: steps nest deeper than 12 levels")


def _cel_to_python(expression: str) -> Any:
    """The matchCondition's CEL as a Python predicate of the namespace (its subset we emit)."""

    def matches(m: re.Match[str]) -> str:
        return f"bool(re.search({m.group(1).replace(chr(92) * 2, chr(92))!r}, ns))"

    python = re.sub(r"request\.namespace\.matches\('((?:[^'\\]|\\.)*)'\)", matches, expression)
    python = python.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    return eval(f"lambda ns: {python}", {"re": re})


NAMES = ["e2e-1234-a", "e2e-1234-", "e2e-5678-a", "ci", "myapp-test", "myapp-pr-123",
         "myapp-pr-456", "otherapp-pr-123", "kube-system", "a.b", "axb"]  # fmt: skip


@pytest.mark.parametrize(
    "patterns",
    [
        ["e2e-1234-*"],
        ["myapp-*, !*-pr-*, *pr-123"],
        ["!*-pr-*, *pr-123"],
        ["!kube-*"],
        ["ci", "e2e-5678-?"],
        ["a.b"],
        ["e2e-[0-9][0-9][0-9][0-9]-*"],
        ["e2e-[!1]*"],
    ],
)
def test_the_configuration_covers_exactly_the_operators_namespaces(patterns: list[str]) -> None:
    scope = webhookconfig.scope(patterns, clusterwide=False)
    for name in NAMES:
        kopf_serves = any(match_namespace(NamespaceName(name), pattern) for pattern in patterns)
        if "namespaceSelector" in scope:
            (requirement,) = scope["namespaceSelector"]["matchExpressions"]
            reviewed = name in requirement["values"]
        else:
            (condition,) = scope["matchConditions"]
            reviewed = _cel_to_python(condition["expression"])(name)
        assert reviewed is kopf_serves, (name, patterns, scope)


def test_plain_namespaces_use_a_selector_and_all_namespaces_nothing() -> None:
    assert webhookconfig.scope(["b", "a"], clusterwide=False) == {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}
            ]
        }
    }
    assert webhookconfig.scope([], clusterwide=True) == {}


def test_glob_regexes_agree_with_fnmatch() -> None:
    for glob in ["e2e-*", "a?c", "[ab]*", "[!a]*", "x.y"]:
        regex = webhookconfig._glob_regex(glob)
        for name in ["e2e-1", "abc", "axc", "bz", "az", "x.y", "xzy"]:
            assert bool(re.search(regex, name)) is fnmatch.fnmatchcase(name, glob), (glob, name)


def test_the_configuration_reviews_only_pipeline_creates() -> None:
    made = webhookconfig.configuration(
        "shipway-x",
        {"url": "https://127.0.0.1:9443", "caBundle": "Q0E="},
        namespaces=["ci"],
        clusterwide=False,
        failure_policy="Ignore",
    )
    (hook,) = made["webhooks"]
    assert hook["clientConfig"] == {
        "url": f"https://127.0.0.1:9443/{webhookconfig.HANDLER_ID}",
        "caBundle": "Q0E=",
    }
    assert hook["rules"][0]["resources"] == ["pipelines"]
    assert hook["rules"][0]["operations"] == ["CREATE"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "None"
    with pytest.raises(ValueError, match="want Fail or Ignore"):
        webhookconfig.configuration(
            "x", {"url": "https://h"}, ["ci"], False, failure_policy="Maybe"
        )


def test_two_scopes_never_share_a_configuration() -> None:
    url = "https://127.0.0.1:9443"
    one = webhookconfig.configuration_name(["e2e-1111-*"], False, url)
    assert one == webhookconfig.configuration_name(["e2e-1111-*"], False, url)
    assert one != webhookconfig.configuration_name(["e2e-2222-*"], False, url)
    assert one != webhookconfig.configuration_name([], True, url)


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        ({"url": "http://127.0.0.1:9443"}, "needs https"),
        ({"port": 9443}, "give --webhook-cert and --webhook-key"),
        ({"url": "https://h", "cert": "c"}, "go together"),
    ],
)
def test_bad_webhook_flags_say_what_is_wrong(flags: dict[str, Any], problem: str) -> None:
    args: dict[str, Any] = {"port": None, "url": None, "cert": None, "key": None}
    with pytest.raises(ValueError, match=problem):
        admission.options(
            **{**args, **flags},
            failure_policy="Fail",
            config_name=None,
            namespaces=("ci",),
            clusterwide=False,
        )


def test_a_loopback_url_listens_on_loopback_only() -> None:
    made = admission.options(
        port=None, url="https://127.0.0.1:19443", cert=None, key=None, failure_policy="Fail",
        config_name=None, namespaces=("ci",), clusterwide=False,
    )  # fmt: skip
    assert (made.listen, made.port) == ("127.0.0.1", 19443)
    with pytest.raises(SystemExit):
        main(["operator", "-n", "ci", "--webhook-failure-policy", "Sometimes"])


def test_the_self_signed_certificate_serves_its_host_and_is_its_own_ca(tmp_path: Path) -> None:
    import ssl

    from cryptography import x509

    from shipway.controller.certs import self_signed

    files = self_signed(["127.0.0.1", "localhost"], tmp_path)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert files.key.stat().st_mode & 0o077 == 0  # the key is readable by its owner only
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)  # what kopf's server does with them


class _SlowApi:
    """The API calls of the managed configuration, in order; apply takes its time."""

    def __init__(self) -> None:
        import threading

        self.calls: list[str] = []
        self.release = threading.Event()

    def apply(self, manifest: dict[str, Any]) -> None:
        self.release.wait(5)
        self.calls.append("apply")

    def delete(self) -> None:
        self.calls.append("delete")


def test_a_stop_while_the_configuration_is_applied_still_removes_it() -> None:
    """The operator stopped right after it began to listen: the apply in flight finishes,
    then the delete; the configuration (failurePolicy Fail) never outlives the operator."""
    managed = admission._ManagedConfiguration("shipway-x", lambda cfg: {**cfg}, "https://h:1")
    api = managed.api = _SlowApi()

    async def stop_during_apply() -> None:
        serving = asyncio.create_task(managed.point_at({"url": "https://0.0.0.0:1"}))
        await asyncio.sleep(0.05)
        serving.cancel()  # kopf stopping the server
        with pytest.raises(asyncio.CancelledError):
            await serving
        api.release.set()
        await managed.remove()

    asyncio.run(stop_during_apply())
    assert api.calls == ["apply", "delete"]


def test_an_operator_that_never_applied_its_configuration_deletes_nothing() -> None:
    managed = admission._ManagedConfiguration("shipway-x", lambda cfg: {**cfg}, "https://h:1")
    api = managed.api = _SlowApi()
    asyncio.run(managed.remove())
    assert api.calls == []
