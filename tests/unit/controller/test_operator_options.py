"""The operator's environment options that shape step pods and peering (set by the Helm chart)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import kopf
import pytest

from shipway.cli import main
from shipway.controller.config import (
    RESTRICTED,
    ConfigError,
    OperatorConfig,
    flag,
    operator_identity,
    peering_priority,
    pod_options,
)
from shipway.controller.handlers import NoDiffBase, configure_peering
from shipway.engine.intents import StepToCreate
from shipway.engine.pods.manifests import all_manifests, pod_manifest
from shipway.engine.settings import PodOptions
from tests.unit.builders import REF, WALKTHROUGH, compiled

CREATE = StepToCreate("1", 0, "demo-4a49a-1-write-artifact-0", None)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, PodOptions()),
        (
            {"SHIPWAY_DEFAULT_STEP_SERVICE_ACCOUNT": "shipway-step"},
            PodOptions(default_service_account="shipway-step"),
        ),
        ({"SHIPWAY_DEFAULT_STEP_SERVICE_ACCOUNT": "  "}, PodOptions()),
        ({"SHIPWAY_RESTRICTED_PODS": "true"}, PodOptions(security_context=RESTRICTED)),
        ({"SHIPWAY_RESTRICTED_PODS": "no"}, PodOptions()),
    ],
)
def test_pod_options_from_environment(env: dict[str, str], expected: PodOptions) -> None:
    assert pod_options(env) == expected


def test_default_service_account_applies_when_the_pipeline_names_none() -> None:
    options = PodOptions(default_service_account="shipway-step")
    pod = pod_manifest(REF, compiled(WALKTHROUGH), CREATE, options=options)
    assert pod["spec"]["serviceAccountName"] == "shipway-step"
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_pipeline_service_account_wins_over_the_default() -> None:
    options = PodOptions(default_service_account="shipway-step")
    raw = {**WALKTHROUGH, "serviceAccountName": "builder"}
    pod = pod_manifest(REF, compiled(raw), CREATE, options=options)
    assert pod["spec"]["serviceAccountName"] == "builder"


def test_without_a_default_the_namespace_default_account_is_used() -> None:
    pods = [m for m in all_manifests(REF, compiled(WALKTHROUGH)) if m["kind"] == "Pod"]
    assert pods
    assert all("serviceAccountName" not in p["spec"] for p in pods)


@pytest.mark.parametrize(("value", "expected"), [(None, 0), ("", 0), ("7", 7), ("-3", -3)])
def test_peering_priority_numbers(value: str | None, expected: int) -> None:
    assert peering_priority(value) == expected


def test_peering_priority_auto_is_positive_and_varies() -> None:
    drawn = {peering_priority("auto") for _ in range(20)}
    assert all(1 <= p < 2**31 for p in drawn)
    assert len(drawn) > 1


def test_peering_priority_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="SHIPWAY_PEERING_PRIORITY must be a number"):
        peering_priority("high")


KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


def test_step_pool_from_environment() -> None:
    options = pod_options(
        {
            "SHIPWAY_STEP_TOLERATIONS": json.dumps([KWOK_TOLERATION]),
            "SHIPWAY_STEP_NODE_SELECTOR": '{"pool": "ci"}',
        }
    )
    assert options == PodOptions(tolerations=(KWOK_TOLERATION,), node_selector={"pool": "ci"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHIPWAY_STEP_TOLERATIONS": "[{"}, "SHIPWAY_STEP_TOLERATIONS is not valid JSON"),
        ({"SHIPWAY_STEP_TOLERATIONS": '{"key": "a"}'}, "a JSON list of toleration objects"),
        ({"SHIPWAY_STEP_TOLERATIONS": '["a"]'}, "a JSON list of toleration objects"),
        ({"SHIPWAY_STEP_NODE_SELECTOR": "pool=ci"}, "SHIPWAY_STEP_NODE_SELECTOR is not valid"),
        ({"SHIPWAY_STEP_NODE_SELECTOR": '{"n": 1}'}, "a JSON object of string labels"),
    ],
)
def test_step_pool_settings_are_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pod_options(env)


def test_operator_refuses_a_bad_step_pool_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHIPWAY_STEP_NODE_SELECTOR", "pool=ci")
    assert main(["operator", "-A"]) == 2
    assert "SHIPWAY_STEP_NODE_SELECTOR is not valid JSON" in capsys.readouterr().err


def test_step_pool_lands_in_the_step_pod_beside_the_workspace_affinity() -> None:
    options = PodOptions(tolerations=(KWOK_TOLERATION,), node_selector={"pool": "ci"})
    pod = pod_manifest(REF, compiled(WALKTHROUGH), CREATE, options=options)
    assert pod["spec"]["tolerations"] == [KWOK_TOLERATION]
    assert pod["spec"]["nodeSelector"] == {"pool": "ci"}
    assert "podAffinity" in pod["spec"]["affinity"]


def test_no_step_pool_by_default() -> None:
    pod = pod_manifest(REF, compiled(WALKTHROUGH), CREATE)
    assert "tolerations" not in pod["spec"]
    assert "nodeSelector" not in pod["spec"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, True),
        ("", True),
        ("on", True),
        ("true", True),
        ("off", False),
        ("False", False),
        ("0", False),
    ],
)
def test_scanning_switch(value: str | None, expected: bool) -> None:
    env = {} if value is None else {"SHIPWAY_SCANNING": value}
    assert OperatorConfig.from_env(env).scanning is expected


@pytest.mark.parametrize("name", ["SHIPWAY_SCANNING", "SHIPWAY_RESTRICTED_PODS"])
def test_one_parser_for_every_yes_no_setting(name: str) -> None:
    assert flag({name: "On"}, name, default=False) is True
    assert flag({name: "no"}, name, default=True) is False
    with pytest.raises(ConfigError, match=name):
        OperatorConfig.from_env({name: "maybe"})


def test_a_flag_wins_over_the_environment_and_nothing_is_written_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHIPWAY_METRICS_PORT", raising=False)
    env = {"SHIPWAY_METRICS_PORT": "9000", "SHIPWAY_START_GRACE": "2m"}
    config = OperatorConfig.from_env(env)
    assert (config.metrics_port, config.start_grace) == (9000, 120.0)
    assert config.with_flags(metrics_port=9100).metrics_port == 9100
    assert config.with_flags().metrics_port == 9000
    assert config.settings.start_grace == 120.0
    assert "SHIPWAY_METRICS_PORT" not in os.environ


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHIPWAY_METRICS_PORT": "http"}, "SHIPWAY_METRICS_PORT is not a port number"),
        ({"SHIPWAY_START_GRACE": "soon"}, "SHIPWAY_START_GRACE"),
    ],
)
def test_bad_settings_name_their_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OperatorConfig.from_env(env)


def _settings(*, peering: str | None = None, priority: int | None = None) -> kopf.OperatorSettings:
    """Settings as ``kopf.run`` leaves them for ``shipway operator [--peering NAME]``."""
    settings = kopf.OperatorSettings()
    if peering is None:
        settings.peering.standalone = True
    else:
        settings.peering.name = peering
        settings.peering.mandatory = True
    if priority is not None:
        settings.peering.priority = priority
    return settings


def test_peering_from_the_environment_overrides_standalone() -> None:
    settings = _settings()
    env = {"SHIPWAY_PEERING": "shipway", "SHIPWAY_PEERING_PRIORITY": "5"}
    configure_peering(settings, OperatorConfig.from_env(env))
    assert settings.peering.name == "shipway"
    assert settings.peering.priority == 5
    assert settings.peering.mandatory
    assert not settings.peering.standalone


def test_peering_from_the_command_line_is_kept() -> None:
    settings = _settings(peering="cli", priority=9)
    configure_peering(settings, OperatorConfig())
    assert (settings.peering.name, settings.peering.priority) == ("cli", 9)
    assert settings.peering.mandatory
    assert not settings.peering.standalone


def test_no_peering_means_standalone() -> None:
    settings = _settings()
    configure_peering(settings, OperatorConfig())
    assert settings.peering.standalone


def test_kopf_keeps_no_diff_base_for_event_handlers() -> None:
    storage = NoDiffBase()  # kopf's abstract storage API is fully implemented
    assert storage.build(body={}, extra_fields=None) is None  # type: ignore[arg-type]
    assert storage.fetch(body={}) is None  # type: ignore[arg-type]


def test_the_limits_of_issue_18_have_defaults_and_can_be_set_or_lifted() -> None:
    default = OperatorConfig.from_env({})
    assert default.settings.default_timeout == 5 * 3600
    assert default.settings.max_running_pods == 20
    assert default.settings.unschedulable_grace == 600
    env = {
        "SHIPWAY_DEFAULT_TIMEOUT": "90m",
        "SHIPWAY_MAX_RUNNING_PODS": "3",
        "SHIPWAY_UNSCHEDULABLE_GRACE": "20s",
    }
    settings = OperatorConfig.from_env(env).settings
    assert (settings.default_timeout, settings.max_running_pods) == (5400, 3)
    assert settings.unschedulable_grace == 20
    lifted = OperatorConfig.from_env(
        {"SHIPWAY_DEFAULT_TIMEOUT": "0", "SHIPWAY_MAX_RUNNING_PODS": "0"}
    ).settings
    assert (lifted.default_timeout, lifted.max_running_pods) == (None, None)
    with pytest.raises(ConfigError, match="SHIPWAY_MAX_RUNNING_PODS must be a whole number"):
        OperatorConfig.from_env({"SHIPWAY_MAX_RUNNING_PODS": "many"})


def test_step_service_accounts_allowed_and_the_operators_own(tmp_path: Path) -> None:
    options = pod_options(
        {
            "SHIPWAY_STEP_SERVICE_ACCOUNTS": "builder, deployer,",
            "SHIPWAY_OPERATOR_SERVICE_ACCOUNT": "shipway",
            "SHIPWAY_OPERATOR_NAMESPACE": "shipway-system",
        }
    )
    assert options.allowed_service_accounts == ("builder", "deployer")
    assert (options.operator_namespace, options.operator_service_account) == (
        "shipway-system",
        "shipway",
    )
    claims = json.dumps({"sub": "system:serviceaccount:ops:shipway-operator"}).encode()
    payload = base64.urlsafe_b64encode(claims).decode().rstrip("=")
    token = tmp_path / "token"
    token.write_text(f"header.{payload}.signature")
    assert operator_identity({}, token) == ("ops", "shipway-operator")
    assert operator_identity({}, tmp_path / "absent") == (None, None)
    token.write_text("not a token")
    assert operator_identity({}, token) == (None, None)


def test_the_pod_seal_key_comes_from_the_environment() -> None:
    """Issue 30: the chart's Secret gives every operator of a release one key, across restarts."""
    from shipway.engine.settings import PROCESS_SEAL_KEY

    assert pod_options({"SHIPWAY_POD_SEAL_KEY": "0123456789abcdef0123"}).seal_key == (
        b"0123456789abcdef0123"
    )
    assert pod_options({}).seal_key == PROCESS_SEAL_KEY
    with pytest.raises(ConfigError, match="SHIPWAY_POD_SEAL_KEY must be at least 16"):
        pod_options({"SHIPWAY_POD_SEAL_KEY": "short"})
    assert "seal_key" not in repr(pod_options({})), "never logged"
