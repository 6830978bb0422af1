"""The command line turns localkube's errors into one message and exit code 1."""

from __future__ import annotations

import os

import pytest

from localkube import cli


def test_the_cli_turns_errors_into_a_message_and_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["status"]) == 1
    assert "localkube: error: localkube must run as root" in capsys.readouterr().err
    assert cli.main(["kubeconfig"]) == 0
    assert capsys.readouterr().out.strip() == "/var/lib/shipway-localkube/admin.kubeconfig"
