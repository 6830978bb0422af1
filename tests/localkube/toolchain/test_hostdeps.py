"""The host's packages and Go: what counts as installed, and the errors that say how."""

from __future__ import annotations

import json

import pytest

from localkube import config
from localkube.errors import LocalkubeError
from localkube.toolchain import hostdeps


def test_only_fully_installed_packages_count() -> None:
    status = hostdeps.parse_dpkg_status("containerd ii \nrunc rc \nlibc6:amd64 ii \n")
    assert status == {"containerd": "ii", "runc": "rc", "libc6": "ii"}
    assert hostdeps.missing(status, ["containerd", "runc", "libc6", "debootstrap"]) == [
        "runc",
        "debootstrap",
    ]


def test_host_packages_elsewhere_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostdeps.platform, "system", lambda: "Darwin")
    with pytest.raises(LocalkubeError) as info:
        hostdeps.ensure(["containerd"])
    assert "Darwin" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_packages_without_root_say_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostdeps, "unsupported_reason", lambda: "")
    monkeypatch.setattr(hostdeps, "query", lambda pkgs: {"containerd": "ii"})
    monkeypatch.setattr(hostdeps.os, "geteuid", lambda: 1000)
    with pytest.raises(LocalkubeError, match="make host-deps") as info:
        hostdeps.ensure(["containerd", "debootstrap"])
    assert "debootstrap" in str(info.value)
    assert "containerd" not in str(info.value).split(";")[0]
    assert hostdeps.ensure(["containerd"]) == []  # present: nothing to do, no root needed


def test_go_versions() -> None:
    assert hostdeps.parse_go_version("go1.26.8\n") == (1, 26)
    assert hostdeps.parse_go_version("devel") is None
    assert json.dumps(config.GO_MINIMUM)  # a tuple of ints, comparable with the parsed one
