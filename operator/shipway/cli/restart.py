"""``shipway restart NAME``: Codeship's "restart build", a new Pipeline that runs the same again.

The new Pipeline has the old one's spec (without its cancel), its labels and annotations, and
the label ``shipway.dev/restart-of: NAME``, which ``list`` and ``status`` show. Its name is the
first free one of ``<name>-r2``, ``-r3``… (a restart of ``x-r2`` is ``x-r3``), taken by
creating it, so two restarts at once never share one.

What it runs is the same too. A git source checks out again the commit the old run checked out
(its branch or tag stays the build tag, through ``spec.ci``), not where the branch is now. The
Secrets the old Pipeline owns (decrypted variables, build args, registry credentials) get the new
Pipeline as another owner, so deleting the old one leaves them to the new one; Secrets it only
refers to are the user's and stay as they are. An upload is not kept: ``--source DIR`` uploads
the files again.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from itertools import count
from pathlib import Path
from typing import Any, TextIO

from shipway.cli import common
from shipway.cli.common import CommandError, err, get_pipeline, guarded
from shipway.cli.format import LABEL_RESTART_OF
from shipway.engine.naming import dns_label
from shipway.models import SourceStatus

MAX_NAME = 63
MAX_TRIES = 100
"""Names tried before giving up (each taken one costs a refused create)."""
_RESTARTED = re.compile(r"(.+)-r(\d+)")
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration",)


def register(sub: Any, conn: argparse.ArgumentParser) -> None:
    rst = sub.add_parser(
        "restart",
        parents=[conn],
        help="run a Pipeline again: same spec, commit and Secrets (Codeship's restart build)",
    )
    rst.add_argument("name")
    rst.add_argument(
        "--source",
        metavar="DIR",
        help="upload DIR again (a Pipeline whose files came from an upload)",
    )
    rst.add_argument("-d", "--detach", action="store_true", help="return once created")
    rst.add_argument("--no-logs", action="store_true", help="progress and results only")
    rst.set_defaults(func=cmd_restart)


def restart_names(pipeline: Mapping[str, Any]) -> Iterator[str]:
    """``<name>-r2``, ``-r3``…; for a restart ``x-rN`` itself, ``x-r(N+1)`` onwards."""
    meta = pipeline.get("metadata") or {}
    name = str(meta.get("name") or "pipeline")
    base, last = name, 1
    found = _RESTARTED.fullmatch(name)
    if found and LABEL_RESTART_OF in (meta.get("labels") or {}):
        base, last = found[1], int(found[2])
    for number in count(last + 1):
        suffix = f"-r{number}"
        yield dns_label(base, MAX_NAME - len(suffix)) + suffix


def restart_manifest(pipeline: Mapping[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    """The new Pipeline, and notes for the user (what is checked out, what is not pinned)."""
    meta = pipeline.get("metadata") or {}
    spec = {k: v for k, v in (pipeline.get("spec") or {}).items() if k != "cancel"}
    notes: list[str] = []
    git = (spec.get("source") or {}).get("git")
    if git is not None:
        spec, note = _pinned(spec, git, pipeline.get("status") or {}, str(meta.get("name")))
        notes.append(note)
    labels = {**(meta.get("labels") or {}), LABEL_RESTART_OF: str(meta.get("name"))}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_COPIED}
    new_meta: dict[str, Any] = {"name": name, "labels": labels}
    if annotations:
        new_meta["annotations"] = annotations
    manifest = {
        "apiVersion": pipeline.get("apiVersion"),
        "kind": pipeline.get("kind"),
        "metadata": new_meta,
        "spec": spec,
    }
    return manifest, notes


def _pinned(
    spec: dict[str, Any], git: Mapping[str, Any], status: Mapping[str, Any], old: str
) -> tuple[dict[str, Any], str]:
    """The spec checking out the commit the old run checked out, with its branch or tag kept
    as the build tag (a checkout by commit id finds neither)."""
    raw = status.get("source")
    source = SourceStatus.model_validate(raw) if isinstance(raw, dict) else None
    if source is None or source.kind != "git" or not source.commit:
        where = git.get("revision") or "the default branch"
        return spec, f"{old} checked out no commit: checking out {where} as it is now"
    ci = dict(spec.get("ci") or {})
    if not ci.get("branch") and not ci.get("tag"):
        if source.branch:
            ci["branch"] = source.branch
        elif source.tag:
            ci["tag"] = source.tag
    pinned = {
        **spec,
        "source": {**spec["source"], "git": {**git, "revision": source.commit}},
    }
    if ci:
        pinned["ci"] = ci
    where = source.branch or source.tag
    return pinned, f"checking out {source.commit[:12]}{f' ({where})' if where else ''} again"


def secret_names(value: Any) -> set[str]:
    """Every Secret a spec refers to: envFrom and argsFrom (``secretRef``), a git source's
    ``secretName``, ``dockercfgSecret`` and ``imagePullSecrets``, at any depth."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= secret_names(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "secretRef" and isinstance(item, dict) and item.get("name"):
                found.add(str(item["name"]))
            elif key in ("secretName", "dockercfgSecret") and isinstance(item, str):
                found.add(item)
            elif key == "imagePullSecrets" and isinstance(item, list):
                found |= {str(s["name"]) for s in item if isinstance(s, dict) and s.get("name")}
            else:
                found |= secret_names(item)
    return found


def _create_named(api: Any, manifest: dict[str, Any], names: Iterator[str]) -> dict[str, Any]:
    """Create under the first free name (AlreadyExists: the next one)."""
    from shipway.cli.cluster import ClusterError

    for _, name in zip(range(MAX_TRIES), names, strict=False):
        manifest["metadata"]["name"] = name
        try:
            created: dict[str, Any] = api.create(manifest)
            return created
        except ClusterError as exc:
            if exc.status != 409:
                raise
    raise CommandError(f"no free name after {MAX_TRIES} tries (last: {name})")


@guarded
def cmd_restart(args: argparse.Namespace, out: TextIO) -> int:
    from shipway.cli.cluster import ClusterError
    from shipway.cli.run import check_manifest, follow_to_end, listed
    from shipway.cli.secrets import own_secrets, owned_by, owner_of

    api = common.connect_api(args)
    old = get_pipeline(api, args.name)
    names = restart_names(old)
    manifest, notes = restart_manifest(old, next(restart_names(old)))
    source = manifest["spec"].get("source") or {}
    upload = Path(args.source) if args.source else None
    if "upload" in source and upload is None:
        raise CommandError(
            f"{args.name} took its files from an upload, which is not kept: give --source DIR "
            "to upload them again"
        )
    if upload is not None and "upload" not in source:
        raise CommandError(f"{args.name} does not take an upload: drop --source")
    entries = listed(upload)
    check_manifest(manifest)
    uid = str((old.get("metadata") or {}).get("uid"))
    owned, missing = owned_by(api.core, api.namespace, sorted(secret_names(manifest["spec"])), uid)
    for secret in missing:
        err(f"warning: Secret {secret}, which {args.name} refers to, does not exist")
    created = _create_named(api, manifest, names)
    try:
        own_secrets(api.core, api.namespace, owned, owner_of(created))
    except ClusterError as exc:  # the run goes on; only deleting the old one would take them
        err(f"warning: Secrets {', '.join(owned)} stay owned by {args.name} only: {exc}")
    notes = [f"restart of {args.name}: {note}" for note in notes] or [f"restart of {args.name}"]
    return follow_to_end(api, created, out, args, upload=upload, entries=entries, notes=notes)
