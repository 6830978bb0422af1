"""``shipway run``: create a Pipeline from Codeship files or a manifest and follow it."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml

from shipway import GROUP, KIND
from shipway.cli import common
from shipway.cli.archive import masker_for
from shipway.cli.common import (
    FAILED,
    INTERRUPTED,
    OK,
    CommandError,
    err,
    guarded,
    live,
    now,
    style_for,
)
from shipway.cli.convert import ci_flags, convert, source_flags
from shipway.cli.format import phase_of, summary_line
from shipway.cli.source import git_flags_given
from shipway.cli.statustree import status_tree
from shipway.cli.upload import UploadError, list_tree
from shipway.codeship import Conversion
from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.limits import TooDeepToReadError, read_deep
from shipway.compiler.pipeline import compile_pipeline
from shipway.history.logs import Masker
from shipway.history.masking import masked_values


def _manifest_file(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        docs = read_deep(lambda: list(yaml.safe_load_all(text)))
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise CommandError(f"{path}: not valid YAML: {exc}") from None
    except TooDeepToReadError as exc:
        raise CommandError(f"{path}: {exc}") from None
    found = [
        d
        for d in docs
        if isinstance(d, dict)
        and d.get("kind") == KIND
        and str(d.get("apiVersion", "")).startswith(f"{GROUP}/")
    ]
    if len(found) != 1:
        raise CommandError(
            f"{path}: expected one {KIND} (apiVersion {GROUP}/v1alpha1), found {len(found)}"
        )
    return found[0]


def prepare_manifest(
    manifest: Mapping[str, Any], ci: Mapping[str, str], namespace: str | None
) -> dict[str, Any]:
    """A manifest to create as a new run: generateName from its name, CI flags merged in."""
    meta = dict(manifest.get("metadata") or {})
    base = meta.get("generateName") or (f"{meta['name']}-" if meta.get("name") else "pipeline-")
    keep = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
    new_meta: dict[str, Any] = {"generateName": base, **keep}
    if namespace:
        new_meta["namespace"] = namespace
    spec = dict(manifest.get("spec") or {})
    if ci:
        spec["ci"] = {**(spec.get("ci") or {}), **ci}
    return {
        "apiVersion": manifest.get("apiVersion"),
        "kind": KIND,
        "metadata": new_meta,
        "spec": spec,
    }


def check_manifest(manifest: Mapping[str, Any]) -> int:
    """Check the Pipeline as the operator will; the number of its push steps."""
    try:
        compiled = compile_pipeline(manifest.get("spec"))
    except InvalidSpecError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        raise CommandError("the Pipeline is invalid: nothing was created") from None
    return sum(1 for run in compiled.runs if run.push is not None and run.enabled)


def _create(api: Any, manifest: dict[str, Any], secrets: tuple[dict[str, Any], ...]) -> Any:
    """The Secrets of decrypted files, then the Pipeline, which then owns them; a Pipeline
    that cannot be created leaves no new Secret behind."""
    from shipway.cli.secrets import create_secrets, delete_secrets, own_secrets, owner_of

    if not secrets:
        return api.create(manifest)
    made = create_secrets(api.core, api.namespace, secrets)
    try:
        created = api.create(manifest)
    except BaseException:
        delete_secrets(api.core, api.namespace, made)
        raise
    names = [str(secret["metadata"]["name"]) for secret in secrets]
    own_secrets(api.core, api.namespace, names, owner_of(created))
    return created


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job being stopped) is handled like Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _file_source(
    args: argparse.Namespace, manifest: dict[str, Any]
) -> tuple[dict[str, Any], Path | None, dict[str, str]]:
    """A manifest file's source, with the flags: the manifest, the directory to upload, CI
    fields learnt from --git-remote."""
    spec = dict(manifest.get("spec") or {})
    given = spec.get("source") or {}
    directory = Path(args.source or ".")
    source, learnt = source_flags(args, directory, upload=False)
    if source is not None:
        if args.source:
            raise CommandError("use either --source (an upload) or the git flags")
        spec["source"] = source
    elif args.source:
        if "git" in given:
            raise CommandError(f"{args.filename} checks out {given['git'].get('url')}: no upload")
        spec["source"] = {"upload": given.get("upload") or {}}
    elif "upload" in given:
        raise CommandError(f"{args.filename} expects an upload: give --source DIR")
    upload = Path(args.source) if "upload" in (spec.get("source") or {}) else None
    return {**manifest, "spec": spec}, upload, learnt


def _upload(
    api: Any, created: dict[str, Any], directory: Path, printer: Any, *, entries: Any
) -> None:
    """Send the directory; if it cannot be sent, cancel the pipeline rather than leave it
    waiting for the upload's timeout."""
    from shipway.cli.cluster import ClusterError
    from shipway.cli.send import send_directory

    name = created["metadata"]["name"]
    try:
        show = printer.set_footer if printer.live else (lambda text: None)
        send_directory(api, created, directory, show, note=printer.line, entries=entries)
    except (UploadError, ClusterError, OSError) as exc:
        printer.clear_footer()
        printer.line(f"shipway: upload failed: {exc}")
        api.cancel(name)
        return
    finally:
        printer.clear_footer()


@guarded
def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    if args.filename and (args.dir or args.services_path or args.steps_path):
        raise CommandError(
            "use either -f or the Codeship files (--dir, --services-path, --steps-path)"
        )
    upload: Path | None = None
    secrets: tuple[dict[str, Any], ...] = ()
    if args.filename:
        manifest = _manifest_file(args.filename)
        manifest, upload, learnt = _file_source(args, manifest)
    else:
        if args.source:
            raise CommandError("--source goes with -f; --dir uploads its own directory")
        conversion, upload = convert_for_run(args)
        manifest, secrets, learnt = conversion.manifest, conversion.secrets, {}
    entries = listed(upload)
    api, created, pushes = create_run(args, manifest, secrets, learnt, push=bool(args.push))
    skipped = pushes and not args.push
    return follow_to_end(
        api,
        created,
        out,
        args,
        upload=upload,
        entries=entries,
        notes=[f"{pushes} push step(s) will be skipped: add --push to push"] if skipped else [],
        masker=run_masker(api, manifest, secrets),
    )


def convert_for_run(args: argparse.Namespace, steps: Any = None) -> tuple[Conversion, Path | None]:
    """The Codeship files of ``--dir`` converted, and the directory to upload (None with
    ``--no-upload`` or a git source); ``steps`` stands in for the steps file."""
    wants_upload = not args.no_upload and not git_flags_given(args)
    conversion = convert(args, generate_name=True, namespace=None, upload=wants_upload, steps=steps)
    return conversion, (Path(args.dir or ".") if wants_upload else None)


def listed(upload: Path | None) -> Any:
    """The files of the directory to upload, listed before anything is created (an
    unreadable directory creates nothing)."""
    try:
        return list_tree(upload) if upload is not None else None
    except UploadError as exc:
        raise CommandError(str(exc)) from None


def create_run(
    args: argparse.Namespace,
    manifest: dict[str, Any],
    secrets: tuple[dict[str, Any], ...],
    learnt: Mapping[str, str],
    *,
    push: bool,
) -> tuple[Any, dict[str, Any], int]:
    """Connect, check and create the Pipeline (and the Secrets it owns): the API, the created
    Pipeline and the number of its push steps."""
    api = common.connect_api(args)
    manifest = prepare_manifest(manifest, {**learnt, **ci_flags(args)}, None)
    file_ns = (manifest.get("metadata") or {}).get("namespace")
    if file_ns and args.namespace and file_ns != args.namespace:
        raise CommandError(f"the manifest is for namespace {file_ns!r}, not {args.namespace!r}")
    manifest["metadata"].pop("namespace", None)
    manifest["spec"]["push"] = push
    pushes = check_manifest(manifest)
    return api, _create(api, manifest, secrets), pushes


def run_masker(
    api: Any, manifest: Mapping[str, Any], secrets: Sequence[Mapping[str, Any]]
) -> Masker:
    """The values of the Secrets a new run names (the user's own that the user may read) and of
    those this command decrypted: they print as ***, as in the archive."""
    return Masker([*masker_for(api, manifest).values, *masked_values(secrets)])


def follow_to_end(
    api: Any,
    created: dict[str, Any],
    out: TextIO,
    args: argparse.Namespace,
    *,
    upload: Path | None,
    entries: Any,
    notes: Sequence[str] = (),
    masker: Masker | None = None,
) -> int:
    """``follow_created`` as ``--detach`` and ``--no-logs`` ask; the exit code: 0 when the
    Pipeline succeeded."""
    final = follow_created(
        api,
        created,
        out,
        upload=upload,
        entries=entries,
        detach=args.detach,
        logs=not args.no_logs,
        notes=notes,
        masker=masker,
    )
    if isinstance(final, int):
        return final
    return OK if phase_of(final) == "Succeeded" else FAILED


def follow_created(
    api: Any,
    created: dict[str, Any],
    out: TextIO,
    *,
    upload: Path | None,
    entries: Any,
    detach: bool,
    logs: bool = True,
    notes: Sequence[str] = (),
    masker: Masker | None = None,
) -> dict[str, Any] | int:
    """What ``run`` does once its Pipeline exists: say so, upload the directory, follow the
    steps' logs to the end (Ctrl-C cancels) and print the status tree. The Pipeline's last
    state, or an exit code when it returns before the end (detached, left running)."""
    from shipway.cli.follow import Follower, Printer

    name = created["metadata"]["name"]
    style = style_for(out)
    if detach and upload is None:
        out.write(f"{name}\n")
        return OK
    # --detach with an upload: its progress on stderr, the name alone on stdout
    stream = sys.stderr if detach else out
    masker = masker or masker_for(api, created)
    printer = Printer(stream, live(stream), masker.mask)
    printer.line(f"shipway: pipeline {api.namespace}/{name} created")
    for note in notes:
        printer.line(f"shipway: {note}")
    follower = Follower(api, name, printer, style, logs=logs)
    final = created
    with _terminate_as_interrupt():
        try:
            if upload is not None:
                _upload(api, created, upload, printer, entries=entries)
            if detach:
                out.write(f"{name}\n")
                return OK
            final = follower.follow(created)
        except KeyboardInterrupt:
            printer.clear_footer()
            printer.line(f"shipway: cancelling {name} (interrupt again to leave it running)")
            try:
                api.cancel(name)
                final = follower.follow()
            except KeyboardInterrupt:
                printer.clear_footer()
                err(f"left {name} as it is; see: shipway status {name}")
                return INTERRUPTED
    printer.line("")
    for line in status_tree(final, now(), style):
        printer.line(line)
    printer.line(summary_line(final, now(), style))
    return final
