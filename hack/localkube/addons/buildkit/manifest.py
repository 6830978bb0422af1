"""BuildKit's objects for the local cluster, rendered from the chart once and kept in the tree.

``localkube up --for demo`` must not build Helm (two minutes and more on a fresh machine) only
to run ``helm template`` of ``templates/buildkit.yaml``. The rendering is therefore committed
(``manifests/buildkit.yaml``) with a placeholder where the registry's CA goes, the one value
that differs between machines; :func:`objects` puts the cluster's CA in its place. ``make
chart-check`` renders it again with Helm and fails when the file drifts from the chart
(``make buildkit-manifest`` rewrites it), so what the local cluster runs stays what the chart
deploys.

``python -m localkube.addons.buildkit.manifest --helm PATH [--write]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from localkube import config
from localkube.addons.buildkit import builder as buildkit
from localkube.addons.registry import server as registry

RENDERED = Path(__file__).parent / "manifests" / "buildkit.yaml"
#: Stands for the cluster CA's PEM in the committed rendering (a block scalar's whole value);
#: shaped as a PEM block because the chart's schema wants one.
CA_PLACEHOLDER = (
    "-----BEGIN CERTIFICATE-----\nlocalkube's cluster CA goes here\n-----END CERTIFICATE-----\n"
)
HEADER = (
    "# Rendered from charts/shipway (templates/buildkit.yaml) by\n"
    "# `python -m localkube.addons.buildkit.manifest --helm PATH --write` (make buildkit-manifest);\n"
    "# make chart-check fails when it drifts from the chart. Do not edit.\n"
)


def values() -> dict[str, Any]:
    """The local builder's chart values, the CA left as :data:`CA_PLACEHOLDER`."""
    return buildkit.chart_values(buildkit.Registry(registry.HOST, CA_PLACEHOLDER))


def helm_render(helm: str) -> str:
    """What the committed file must hold: ``helm template`` of the builder's objects."""
    argv = [
        helm, "template", buildkit.RELEASE, str(buildkit.CHART),
        "--namespace", buildkit.NAMESPACE, "--kube-version", config.KUBERNETES_VERSION,
        "--show-only", "templates/buildkit.yaml", "--values", "-",
    ]  # fmt: skip
    done = subprocess.run(
        argv, input=json.dumps(values()), capture_output=True, text=True, check=True
    )
    return HEADER + done.stdout


def _fill(node: Any, ca_pem: str) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, ca_pem) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, ca_pem) for v in node]
    if node == CA_PLACEHOLDER:
        return ca_pem
    return node


def objects(ca_pem: str, text: str | None = None) -> list[dict[str, Any]]:
    """The committed objects (or ``text``'s) with the cluster CA in place of the placeholder."""
    docs = yaml.safe_load_all(RENDERED.read_text() if text is None else text)
    return [_fill(doc, ca_pem) for doc in docs if doc]


def drift(helm: str) -> str | None:
    """Why the committed rendering is stale, or None."""
    if not RENDERED.is_file() or RENDERED.read_text() != helm_render(helm):
        return (
            f"{RENDERED.relative_to(buildkit.ROOT)} is out of date with the chart;"
            " run `make buildkit-manifest`"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube.addons.buildkit.manifest",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--helm", required=True, help="the helm binary")
    parser.add_argument("--write", action="store_true", help="rewrite the committed rendering")
    args = parser.parse_args(argv)
    if args.write:
        RENDERED.write_text(helm_render(args.helm))
        print(f"wrote {RENDERED}")
        return 0
    problem = drift(args.helm)
    if problem is not None:
        print(f"buildkit-manifest: {problem}", file=sys.stderr)
        return 1
    print("buildkit-manifest: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
