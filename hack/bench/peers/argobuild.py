"""Argo Workflows' ``workflow-controller`` and ``argoexec``, built from the Go module proxy.

The module's ``go.mod`` has no ``replace`` or ``exclude`` directives, so ``go install
module@version`` builds it as published (no wrapper module needed); the binaries are cached
by version under the cluster's cache like every other binary, so a rerun reuses them.
"""

from __future__ import annotations

from pathlib import Path

from localkube import build
from localkube.config import Paths

ARGO_VERSION = "v4.0.5"
ARGO_MODULE = "github.com/argoproj/argo-workflows/v4"
_LDFLAGS = (
    f"-s -w -X {ARGO_MODULE}.version={ARGO_VERSION}"
    f" -X {ARGO_MODULE}.gitTag={ARGO_VERSION} -X {ARGO_MODULE}.gitTreeState=clean"
)
ARGO = build.Target(
    f"argo-workflows-{ARGO_VERSION}",
    (
        build.Binary("workflow-controller", f"{ARGO_MODULE}/cmd/workflow-controller"),
        build.Binary("argoexec", f"{ARGO_MODULE}/cmd/argoexec"),
    ),
    install_version=ARGO_VERSION,
    ldflags=_LDFLAGS,
)


def ensure_built(paths: Paths) -> Path:
    """The directory holding both binaries, building them first on a cold cache."""
    return build.build(ARGO, paths)
