"""The registry's retention: what a prune removes."""

from __future__ import annotations

import pytest

from localkube.addons.registry import retention
from localkube.errors import LocalkubeError


def test_prune_takes_whole_path_prefixes_and_never_base_images() -> None:
    catalog = [
        "shipway/team-a/p1/app",
        "shipway/team-a/p10/app",
        "shipway/team-a/p1",
        "library/busybox",
    ]
    assert retention.repositories_under(catalog, "shipway/team-a/p1") == [
        "shipway/team-a/p1/app",
        "shipway/team-a/p1",
    ]
    assert retention.repositories_under(catalog, "library") == []
    with pytest.raises(LocalkubeError, match="prefix"):
        retention.repositories_under(catalog, "/")
