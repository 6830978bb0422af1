"""The host packages the local cluster, its images and the operator image need: checked with
one ``dpkg-query`` (fast when all are there) and installed with apt-get as root on
Debian/Ubuntu; anywhere else a one-line error says what to do.

``make host-deps`` runs this with the system Python before any virtualenv exists (this
module, like all of localkube, uses only the standard library).
"""

from __future__ import annotations

import io
import os
import platform
import re
import shutil
import subprocess
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from localkube import config
from localkube.errors import LocalkubeError

GO_PROXY = "https://proxy.golang.org"

#: Debian package -> why the project needs it.
PACKAGES: dict[str, str] = {
    "containerd": "the node's container runtime",
    "runc": "containerd's OCI runtime",
    "containernetworking-plugins": "pod networking (CNI bridge, host-local, portmap)",
    "iptables": "kube-proxy and CNI masquerading",
    "conntrack": "kube-proxy",
    "socat": "kubectl port-forward",
    "ethtool": "the kubelet's network checks",
    "iproute2": "node address, veth and bridge cleanup",
    "kmod": "loading br_netfilter/overlay",
    "util-linux": "unshare/nsenter: the node's private mount namespace",
    "openssl": "the cluster's certificates",
    "busybox-static": "the busybox image and the shells of the small images",
    "redis-server": "the redis image",
    "debootstrap": "the debian base image (a real debootstrap)",
    "python3-venv": "the project's virtualenv and the operator image's venv",
    "python3.11-minimal": "the operator image's interpreter",
    "libpython3.11-stdlib": "the operator image's standard library",
    "ca-certificates": "TLS to the package registries",
    "git": "the tests' git server and checkouts",
    # BuildKit (docs/buildkit.md): copied into the builder's image.
    "rootlesskit": "the rootless BuildKit builder's user namespace",
    "uidmap": "newuidmap/newgidmap of the rootless builder",
    "libcap2-bin": "setcap: file capabilities of newuidmap in the builder's image",
    # The dashboard's end-to-end tests (docs/dashboard.md): a real headless browser.
    "chromium": "the dashboard's browser tests (headless Chromium)",
    "chromium-driver": "chromedriver, which Selenium drives Chromium with (its exact version)",
}


def missing(status: Mapping[str, str], wanted: Iterable[str]) -> list[str]:
    """Packages of ``wanted`` not fully installed (dpkg's abbreviated status is not ``ii``)."""
    return [p for p in wanted if not status.get(p, "").startswith("ii")]


def parse_dpkg_status(out: str) -> dict[str, str]:
    """``dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n'`` output -> package: status."""
    result: dict[str, str] = {}
    for line in out.splitlines():
        name, _, status = line.partition(" ")
        if name:
            result[name.split(":", 1)[0]] = status.strip()
    return result


def query(packages: Iterable[str]) -> dict[str, str]:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    return parse_dpkg_status(proc.stdout)


def unsupported_reason() -> str:
    """Why this host cannot install packages itself ("" when it can: Linux with apt)."""
    if platform.system() != "Linux":
        return f"this is {platform.system()}, not Linux"
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        return "this Linux has no apt-get/dpkg (not Debian or Ubuntu)"
    return ""


def ensure(packages: Iterable[str] = PACKAGES, *, log: bool = True) -> list[str]:
    """Install what is missing; return what was installed. Raise with one line otherwise."""
    wanted = list(packages)
    why = unsupported_reason()
    if why:
        raise LocalkubeError(
            f"host packages: {why}; install the equivalents of {' '.join(wanted)} yourself,"
            " or run the end-to-end tests on another cluster (SHIPWAY_E2E_KUBECONFIG)"
        )
    todo = missing(query(wanted), wanted)
    if not todo:
        return []
    if os.geteuid() != 0:
        raise LocalkubeError(
            f"host packages missing: {' '.join(todo)}; run `make host-deps` as root"
            f" (it runs apt-get install -y {' '.join(todo)})"
        )
    if log:
        print(f"localkube: installing host packages: {' '.join(todo)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *todo],
    ):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise LocalkubeError(f"`{' '.join(argv)}` failed: {' / '.join(detail)}")
    still = missing(query(wanted), wanted)
    if still:
        raise LocalkubeError(f"host packages still missing after apt-get: {' '.join(still)}")
    return todo


# -- Go -------------------------------------------------------------------------------------


def parse_go_version(text: str) -> tuple[int, int] | None:
    """``go1.26.8`` (``go env GOVERSION``) -> (1, 26)."""
    m = re.match(r"go(\d+)\.(\d+)", text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def _version_of(go: str) -> tuple[int, int] | None:
    proc = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=False,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )  # fmt: skip
    return parse_go_version(proc.stdout) if proc.returncode == 0 else None


def toolchain_dir(cache: Path) -> Path:
    return cache / f"go-{config.GO_VERSION}"


def find_go(cache: Path) -> str | None:
    """A Go at least GO_MINIMUM: the one on PATH, else the one ``ensure_go`` fetched."""
    on_path = shutil.which("go")
    if on_path:
        found = _version_of(on_path)
        if found is not None and found >= config.GO_MINIMUM:
            return on_path
    fetched = toolchain_dir(cache) / "bin" / "go"
    return str(fetched) if fetched.is_file() else None


def ensure_go(cache: Path, *, log: bool = True) -> str:
    """Fetch the Go toolchain from the Go module proxy (module golang.org/toolchain) unless a
    recent enough Go is there; return the ``go`` to use."""
    found = find_go(cache)
    if found:
        return found
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    version = f"v0.0.1-go{config.GO_VERSION}.linux-{machine}"
    url = f"{GO_PROXY}/golang.org/toolchain/@v/{version}.zip"
    if log:
        print(f"localkube: fetching Go {config.GO_VERSION} from {url}", flush=True)
    try:
        with urllib.request.urlopen(url, timeout=600) as resp:
            data = resp.read()
    except OSError as exc:
        raise LocalkubeError(f"cannot fetch Go from the Go module proxy ({url}): {exc}") from exc
    target = toolchain_dir(cache)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    prefix = f"golang.org/toolchain@{version}/"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member in zf.infolist():
            if not member.filename.startswith(prefix) or member.is_dir():
                continue
            dest = partial / member.filename[len(prefix) :]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(member))
    # Module zips carry no file modes: as `go` does for toolchains, make the tools executable.
    for tool in [*partial.glob("bin/*"), *partial.glob("pkg/tool/*/*")]:
        tool.chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return str(target / "bin" / "go")
