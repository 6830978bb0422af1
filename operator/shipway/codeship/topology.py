"""A service's volumes, volumes_from, links and depends_on in Shipway's form (compose's long
volume syntax, the deprecated ``link``, ``service:``/``container:`` prefixes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shipway.codeship import daemon
from shipway.codeship.issues import WarningKind
from shipway.codeship.report import Report, Reporting, join, scalar_text, string_list, type_name
from shipway.codeship.yamlfile import text_of
from shipway.compiler.volumes import host_directory


class _Files(Protocol):
    def has_content(self, path: str) -> bool: ...


@dataclass
class ServiceTopology(Reporting):
    """How one service mounts and links, reported against the services file."""

    name: str
    body: dict[str, Any]
    source: str
    report: Report
    files: _Files
    has_source: bool

    def where(self, key: str) -> str:
        return join(self.name, key)

    def volumes(self) -> list[str]:
        if "volumes" not in self.body:
            return []
        value = self.body["volumes"]
        where = self.where("volumes")
        if not isinstance(value, list):
            self.error(where, f"must be a list, not {type_name(value)}")
            return []
        result: list[str] = []
        for index, item in enumerate(value):
            at = join(where, index)
            entry = self._long_volume(item, at) if isinstance(item, dict) else None
            if entry is None and not isinstance(item, dict):
                entry = scalar_text(self.report, self.source, at, item)
            if entry is None:
                continue
            host = entry.split(":")[0] if ":" in entry else None
            if host and daemon.is_docker_socket(host):
                self.warn(at, daemon.socket_message(host), WarningKind.NOTE)
                continue
            result.append(entry)
            if host and host.startswith(("/", "~")):
                self.warn(
                    at,
                    f"{host} was a directory of Codeship's build machine, gone with the build: "
                    f"here it is the directory {host_directory(host)} of the pipeline's "
                    "workspace claim, shared by its steps and gone with it (never the node's)",
                )
            if (
                host
                and not host.startswith(("/", "~"))
                and not self.has_source
                and self.files.has_content(host)
            ):
                self.warn(
                    at,
                    f"{host} has files in the checkout, but without a source the workspace "
                    f"starts empty: steps see only what earlier steps wrote there (give a "
                    f"source: --git-url, --git-remote, or shipway run --dir, which uploads them)",
                )
        return result

    def _long_volume(self, item: dict[str, Any], where: str) -> str | None:
        """The compose long syntax (type/source/target/read_only) as a short entry."""
        kind = text_of(item.get("type", "volume"))
        target = item.get("target")
        if not isinstance(target, str):
            self.error(where, "a volume map needs target (the path in the container)")
            return None
        source = item.get("source")
        mode = ":ro" if item.get("read_only") is True else ""
        if kind == "bind" and isinstance(source, str):
            return f"{source}:{target}{mode}"
        if kind == "volume" and source is None:
            return target
        if kind == "volume" and isinstance(source, str):
            return f"{source}:{target}{mode}"
        self.error(where, f"volume type {kind!r} is not supported (use bind or volume)")
        return None

    def volumes_from(self) -> list[str]:
        if "volumes_from" not in self.body:
            return []
        where = self.where("volumes_from")
        entries = string_list(self.report, self.source, where, self.body["volumes_from"]) or []
        result: list[str] = []
        for index, entry in enumerate(entries):
            if entry.startswith("container:"):
                self.error(
                    join(where, index),
                    f"{entry!r}: only services can share volumes (no containers outside the pipeline)",
                )
                continue
            result.append(entry.removeprefix("service:"))
        return result

    def links(self) -> list[str]:
        links: list[str] = []
        for key in ("links", "link"):
            if key not in self.body:
                continue
            if key == "link":
                self.warn(self.where(key), "deprecated: use links", WarningKind.DEPRECATED)
            for entry in (
                string_list(self.report, self.source, self.where(key), self.body[key]) or []
            ):
                if entry not in links:
                    links.append(entry)
        return links

    def depends_on(self) -> list[str]:
        if "depends_on" not in self.body:
            return []
        value = self.body["depends_on"]
        where = self.where("depends_on")
        if isinstance(value, dict):
            return [text_of(k) for k in value]
        return string_list(self.report, self.source, where, value) or []
