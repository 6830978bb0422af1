"""Shapes of real Codeship projects (issue #28) run on the real cluster with ``shipway run --dir``.

A camelCase service and one with '/' in its name, linked and reached by host name; an absolute
host path shared by two steps (the claim's ``.shipway/host/tmp``); the same step name twice.
The converter's side is tests/unit/codeship/test_shapes.py.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from . import crds
from .pipelines import Kubectl
from .test_codeship_corpus import printed, shipway_run

pytestmark = pytest.mark.e2e

SERVICES = """\
webApp:
  image: busybox:1.36
  command: sleep 600
test/php-7.2:
  image: debian:12
  links:
    - webApp
  volumes:
    - /tmp:/log
reader:
  image: busybox:1.36
  volumes:
    - /tmp:/data
"""

# glibc's getent resolves as programs of the step do (the mirror's busybox is static: its
# wget cannot look names up at all); an unknown name prints nothing.
STEPS = """\
- type: serial
  steps:
    - name: check
      service: test/php-7.2
      command:
        - sh
        - -c
        - |
          for h in webapp webApp nothing-here; do
            getent hosts $h | sed "s/^/$h resolves to /"
          done
          echo shared > /log/x
    - name: check
      service: reader
      command: sh -c 'echo "read $(cat /data/x)"'
"""


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def test_codeship_names_host_paths_and_repeated_step_names_run(k: Kubectl, tmp_path: Path) -> None:
    project = tmp_path / "shapes"
    project.mkdir()
    (project / "codeship-services.yml").write_text(SERVICES)
    (project / "codeship-steps.yml").write_text(STEPS)
    output = ""
    for _ in range(4):  # another session's older CRD refuses webApp: ours again, then retry
        with crds.kept(k):
            crds.apply(k)
            result = shipway_run(k, project)
        output = result.stdout + result.stderr
        if "service names are lower-case" not in output:
            break
    assert result.returncode == 0, output
    lines = {" ".join(line.split()) for line in printed(result)}
    assert "read shared" in lines, output
    assert "webapp resolves to 127.0.0.1 webapp" in lines, output
    # glibc looks /etc/hosts up ignoring case: webApp reaches the lower-case host alias
    assert "webApp resolves to 127.0.0.1 webapp" in lines, output
    assert not any(line.startswith("nothing-here") for line in lines), output


def test_a_builds_encrypted_args_come_from_the_secret_args_secret_names(
    k: Kubectl, tmp_path: Path
) -> None:
    """No AES key: ``--args-secret app=NAME`` stands in for ``encrypted_args_file``; the
    Dockerfile reads the Secret's key as a BuildKit secret."""
    value = f"v-{secrets.token_hex(8)}"
    k.apply_docs(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "app-build-args"},
                "stringData": {"TOKEN": value},
            }
        ]
    )
    project = tmp_path / "args"
    project.mkdir()
    (project / "codeship-services.yml").write_text(
        "app:\n  build:\n    context: .\n    encrypted_args_file: args.encrypted\n"
    )
    (project / "codeship-steps.yml").write_text("- service: app\n  command: cat /checked\n")
    (project / "args.encrypted").write_text("encrypted with a key this test does not have\n")
    (project / "Dockerfile").write_text(
        "FROM busybox\n"
        'RUN --mount=type=secret,id=TOKEN,env=TOKEN printf %s "$TOKEN" | sha256sum > /checked\n'
    )
    with crds.kept(k):
        result = shipway_run(k, project, "--args-secret", "app=app-build-args")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    seen = hashlib.sha256(value.encode()).hexdigest()
    assert any(line.startswith(seen) for line in printed(result)), output
    assert value not in output
