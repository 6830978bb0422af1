"""``buildctl-shipway``, the build pods' entrypoint, against a fake ``buildctl``.

The fake prints what the real buildctl v0.34.2 printed against a real buildkitd with TLS
(client certificate missing or from another CA, nothing listening, cache volume full), so
these pin the diagnosis each failure gets and that every wait is bounded. The e2e suite
(tests/e2e/test_buildkit.py) runs the same script in a pod against the cluster's builder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "hack"))

from localkube.addons.buildkit.client import CLIENT_SCRIPT  # noqa: E402

REFUSED = (
    'error: failed to list workers: Unavailable: connection error: desc = "transport: Error'
    ' while dialing: dial tcp 10.96.0.9:1234: connect: connection refused"'
)
CERT_REQUIRED = (
    'error: failed to list workers: Unavailable: connection error: desc = "error reading server'
    ' preface: remote error: tls: certificate required"'
)
BROKEN_PIPE = (
    "error: failed to list workers: Unavailable: write tcp 10.244.0.7:45872->10.96.0.9:1234:"
    " write: broken pipe"
)
UNKNOWN_CA = (
    'error: failed to list workers: Unavailable: connection error: desc = "transport:'
    " authentication handshake failed: tls: failed to verify certificate: x509: certificate"
    ' signed by unknown authority"'
)
DISK_FULL = (
    "#3 ERROR: write /var/lib/buildkit/runc-overlayfs/snapshots/snapshots/3/big: no space left"
    " on device\nerror: failed to solve: ResourceExhausted: write /var/lib/buildkit/runc-"
    "overlayfs/snapshots/snapshots/3/big: no space left on device"
)

#: The fake buildctl: ``debug workers`` answers with $FAKE_CONNECT (empty: success), any other
#: command prints $FAKE_BUILD_OUT and exits $FAKE_BUILD_RC; every call is logged.
FAKE = """#!/bin/sh
echo "$*" >> "$FAKE_CALLS"
case "$*" in
  *"debug workers"*)
    if [ -n "${FAKE_CONNECT:-}" ]; then echo "$FAKE_CONNECT" >&2; exit 1; fi
    echo "ID  PLATFORMS"; exit 0 ;;
esac
[ -n "${FAKE_SLEEP:-}" ] && exec sleep "$FAKE_SLEEP"  # buildctl is one process
printf '%s\\n' "${FAKE_BUILD_OUT:-#1 DONE}" >&2
exit "${FAKE_BUILD_RC:-0}"
"""

SHELLS = [s for s in ("/bin/busybox", "/bin/sh") if os.path.exists(s)]


class Run:
    def __init__(self, tmp_path: Path, shell: str) -> None:
        self.tmp = tmp_path
        self.shell = shell
        bindir = tmp_path / "bin"
        bindir.mkdir()
        fake = bindir / "buildctl"
        fake.write_text(FAKE)
        fake.chmod(0o755)
        self.script = tmp_path / "buildctl-shipway"
        self.script.write_text(CLIENT_SCRIPT)
        self.certs = tmp_path / "certs"
        self.certs.mkdir()
        for name in ("ca.crt", "tls.crt", "tls.key"):
            (self.certs / name).write_text("-----BEGIN-----\n")
        self.calls = tmp_path / "calls"
        self.calls.touch()
        self.env = {
            "PATH": f"{bindir}:/usr/bin:/bin",
            "BUILDKIT_HOST": "tcp://shipway-buildkitd.shipway-buildkit.svc:1234",
            "BUILDKIT_CERTS": str(self.certs),
            "BUILDKIT_WAIT": "3",
            "FAKE_CALLS": str(self.calls),
        }

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        argv = [self.shell, *(["sh"] if self.shell.endswith("busybox") else [])]
        return subprocess.run(
            [*argv, str(self.script), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def builds(self) -> list[str]:
        return [c for c in self.calls.read_text().splitlines() if "debug workers" not in c]


@pytest.fixture(params=SHELLS)
def run(tmp_path: Path, request: pytest.FixtureRequest) -> Run:
    return Run(tmp_path, request.param)


def test_a_reachable_builder_runs_the_command_with_the_client_certificate(run: Run) -> None:
    proc = run("build", "--frontend", "dockerfile.v0", FAKE_BUILD_OUT="#5 CACHED")
    assert proc.returncode == 0, proc.stderr
    assert "#5 CACHED" in proc.stdout  # the build's log is streamed
    (build,) = run.builds()
    assert f"--tlscert {run.certs}/tls.crt --tlskey {run.certs}/tls.key" in build
    assert build.endswith("build --frontend dockerfile.v0")


def test_no_address_is_refused_before_connecting(run: Run) -> None:
    proc = run("build", BUILDKIT_HOST="")
    assert proc.returncode == 2
    assert "no builder address" in proc.stderr
    assert run.calls.read_text() == ""


def test_a_missing_client_certificate_is_named(run: Run) -> None:
    (run.certs / "tls.key").unlink()
    proc = run("build")
    assert proc.returncode == 3
    assert f"client certificate is missing ({run.certs}/tls.key)" in proc.stderr
    assert run.calls.read_text() == ""


@pytest.mark.parametrize("error", [CERT_REQUIRED, BROKEN_PIPE, UNKNOWN_CA])
def test_a_refused_certificate_is_final_and_not_retried(run: Run, error: str) -> None:
    proc = run("build", FAKE_CONNECT=error, BUILDKIT_WAIT="30")
    assert proc.returncode == 5
    assert "refused this client's TLS certificate" in proc.stderr
    assert error in proc.stderr  # buildctl's own line is kept
    assert len(run.calls.read_text().splitlines()) == 1
    assert run.builds() == []


def test_an_unreachable_builder_is_waited_for_a_bounded_time(run: Run) -> None:
    started = time.monotonic()
    # 6 s of waiting leaves room for a retry even when one attempt is slow on a loaded machine
    proc = run("build", FAKE_CONNECT=REFUSED, BUILDKIT_WAIT="6")
    elapsed = time.monotonic() - started
    assert proc.returncode == 4
    assert "the builder (buildkitd at tcp://shipway-buildkitd" in proc.stderr
    assert "gave up waiting for the builder after 6s" in proc.stderr
    assert 5 < elapsed < 60  # bounded: it gives up, not hangs
    assert len(run.calls.read_text().splitlines()) >= 2  # it did retry
    assert run.builds() == []


def test_a_full_cache_volume_is_named(run: Run) -> None:
    proc = run("build", FAKE_BUILD_OUT=DISK_FULL, FAKE_BUILD_RC="1")
    assert proc.returncode == 1
    assert "the builder's cache volume is full" in proc.stderr
    assert "no space left on device" in proc.stdout


def test_losing_the_builder_mid_build_is_not_called_a_certificate_problem(run: Run) -> None:
    proc = run("build", FAKE_BUILD_OUT=BROKEN_PIPE, FAKE_BUILD_RC="1")
    assert proc.returncode == 1
    assert "lost the builder (buildkitd at" in proc.stderr
    assert "certificate" not in proc.stderr


REGISTRY_DOWN = (
    "#9 exporting to image\n#9 pushing layers 0.1s done\n#9 ERROR: failed to push "
    "registry.localkube-system.svc.cluster.local/ns/p/app: failed to do request: Head "
    '"https://registry.localkube-system.svc.cluster.local/v2/ns/p/app/blobs/sha256:ab": dial '
    "tcp 10.96.0.20:443: connect: connection refused\nerror: failed to solve: failed to push "
    "registry.localkube-system.svc.cluster.local/ns/p/app: failed to do request: dial tcp "
    "10.96.0.20:443: connect: connection refused"
)


def test_a_registry_that_refuses_the_push_is_not_called_losing_the_builder(run: Run) -> None:
    """BuildKit answered (its ``failed to solve`` line names the registry): no guess added."""
    proc = run("build", FAKE_BUILD_OUT=REGISTRY_DOWN, FAKE_BUILD_RC="1")
    assert proc.returncode == 1
    assert "failed to push registry.localkube-system" in proc.stdout
    assert "builder" not in proc.stderr


def test_a_build_over_its_time_limit_is_stopped(run: Run) -> None:
    if shutil.which("timeout") is None:
        pytest.skip("no timeout command")
    started = time.monotonic()
    proc = run("build", FAKE_SLEEP="20", BUILDKIT_TIMEOUT="2")
    assert proc.returncode == 124
    assert "did not finish within BUILDKIT_TIMEOUT=2s" in proc.stderr
    assert time.monotonic() - started < 10


def test_the_server_certificate_names_the_address_clients_dial() -> None:
    from urllib.parse import urlparse

    from localkube.addons.buildkit import builder as buildkit

    server, client = buildkit.cert_specs("10.96.7.7")
    assert urlparse(buildkit.ADDRESS).hostname in server.dns_names
    assert "10.96.7.7" in server.ip_addresses
    assert server.server
    assert not server.client
    assert client.client
    assert not client.server


REBUILD_LOG = """#6 [1/3] FROM docker.io/library/ruby:3.1@sha256:2afb
#6 resolve docker.io/library/ruby:3.1@sha256:2afb done
#6 DONE 0.0s

#8 [2/3] RUN ruby -e 'File.write("/greeting", "hi")'
#8 CACHED

#9 [3/3] COPY app.rb /app/app.rb
#9 DONE 0.1s

#12 [build 4/6] RUN pip install x
#12 CACHED
"""


def test_build_steps_and_cached_ones_are_read_from_the_plain_progress_log() -> None:
    from localkube.addons.buildkit.build import steps

    names, cached = steps(REBUILD_LOG)
    assert names == (
        'RUN ruby -e \'File.write("/greeting", "hi")\'',
        "COPY app.rb /app/app.rb",
        "RUN pip install x",
    )
    assert cached == (names[0], names[2])
