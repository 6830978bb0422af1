"""One accepted delivery carried out (the shell): read the files at the commit, convert,
create the Pipeline, supersede older runs of the branch, tell the forge ``pending``.

Every step is idempotent: the Pipeline's name is derived from what was pushed, so a
redelivery, a retry or a second replica finds it created and does nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException

from shipway.codeship.jetcrypt import parse_key
from shipway.engine.naming import label_value
from shipway.models.repository import MAX_BRANCHES, MAX_DELIVERIES, RepositorySpec
from shipway.triggers import concurrency, forge, http, pipeline, queue
from shipway.triggers.decide import LABEL_BRANCH, LABEL_REPOSITORY, Run, decide
from shipway.triggers.events import Event
from shipway.triggers.files import FIRST, CommitFiles
from shipway.triggers.kube import Manifest, TriggersApi
from shipway.triggers.spares import Spares

log = logging.getLogger("shipway.triggers")


@dataclass(frozen=True)
class Settings:
    run_url: str = ""
    """A link to a run: ``{namespace}`` and ``{name}`` are replaced (the dashboard's URL)."""
    backoff: tuple[float, ...] = http.BACKOFF


def context(repository: str) -> str:
    """The one status context per Repository."""
    return f"shipway/{repository}"


def link(settings: Settings, namespace: str, name: str) -> str:
    return settings.run_url.format(namespace=namespace, name=name) if settings.run_url else ""


class Worker:
    def __init__(
        self, api: TriggersApi, settings: Settings | None = None, spares: Spares | None = None
    ) -> None:
        self.api = api
        self.settings = settings or Settings()
        self.spares = spares
        """Warm workspaces to take for a push; None: every Pipeline makes its own claim."""
        self._status_lock = threading.Lock()
        self._fetches = ThreadPoolExecutor(8, thread_name_prefix="forge-read")

    # -- Repository status ----------------------------------------------------------------
    def record(
        self,
        repo: Manifest,
        delivery: str,
        event: str,
        result: str,
        *,
        message: str = "",
        pipeline_name: str = "",
        branch: tuple[str, str] | None = None,
        status_error: str | None = None,
    ) -> None:
        """Prepend a delivery (and update a branch's last run) on the Repository's status."""
        meta = repo["metadata"]
        with self._status_lock:
            fresh = self.api.repository(meta["namespace"], meta["name"], fresh=True) or repo
            status = dict(fresh.get("status") or {})
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if delivery or event:
                entry = {
                    "id": delivery[:253] or "-", "event": event[:253], "at": now,
                    "result": result, "message": message[:1024], "pipeline": pipeline_name,
                }  # fmt: skip
                status["deliveries"] = [entry, *(status.get("deliveries") or [])][:MAX_DELIVERIES]
                status["lastDelivery"] = now
                status["lastResult"] = f"{result}: {pipeline_name or message}"[:253]
            if branch is not None:
                key, commit = branch
                runs = [b for b in status.get("branches") or [] if b.get("branch") != key]
                runs.insert(0, {"branch": key[:253], "commit": commit[:253],
                                "pipeline": pipeline_name, "phase": "", "status": ""})  # fmt: skip
                status["branches"] = runs[:MAX_BRANCHES]
            if status_error is not None:
                status["statusError"] = status_error[:1024]
            try:
                self.api.patch_repository_status(meta["namespace"], meta["name"], status)
            except Exception as exc:
                log.warning(
                    "repository %s/%s: status not written: %s", meta["namespace"], meta["name"], exc
                )

    def branch_status(self, repo: Manifest, pipeline_name: str, phase: str, told: str) -> None:
        meta = repo["metadata"]
        with self._status_lock:
            fresh = self.api.repository(meta["namespace"], meta["name"], fresh=True)
            if fresh is None:
                return
            runs = list((fresh.get("status") or {}).get("branches") or [])
            changed = False
            for run in runs:
                if run.get("pipeline") == pipeline_name:
                    run["phase"], run["status"] = phase[:253], told[:253]
                    changed = True
            if changed:
                try:
                    self.api.patch_repository_status(
                        meta["namespace"], meta["name"], {"branches": runs}
                    )
                except Exception as exc:
                    log.warning("repository %s: branch status not written: %s", meta["name"], exc)

    # -- forge ------------------------------------------------------------------------------
    def clone_credentials(self, namespace: str, spec: RepositorySpec) -> tuple[str, str]:
        if not spec.cloneSecretName:
            return "", ""
        data = self.api.secret(namespace, spec.cloneSecretName) or {}
        return data.get("username", b"").decode(), data.get("password", b"").decode()

    def reader(self, namespace: str, spec: RepositorySpec, commit: str) -> CommitFiles:
        """Files at ``commit``, each fetched once; every name the converter looks for first
        is asked for now, before it asks (files.py)."""
        user, password = self.clone_credentials(namespace, spec)
        files = CommitFiles(spec, commit, self._fetches, username=user, password=password)
        files.prefetch(FIRST)
        return files

    def tell(
        self,
        repo: Manifest,
        commit: str,
        state: forge.State,
        *,
        description: str,
        target: str,
    ) -> str:
        """Set the commit status; '' or the forge's refusal (retried with backoff first)."""
        spec = RepositorySpec.model_validate(repo["spec"], strict=False)
        namespace = repo["metadata"]["namespace"]
        token = self.api.secret_key(namespace, spec.statusToken)
        if not token:
            return "no status token" if spec.statusToken else ""
        request = forge.commit_status(
            spec, commit, state, description=description, context=context(repo["metadata"]["name"]),
            target_url=target, token=token.decode().strip(),
        )  # fmt: skip
        try:
            http.send_with_retries(request, self.settings.backoff)
        except http.ForgeError as exc:
            log.warning("commit status of %s not set: %s", commit[:12], exc)
            return str(exc)
        return ""

    # -- a run --------------------------------------------------------------------------------
    def handle(
        self,
        repo: Manifest,
        spec: RepositorySpec,
        event: Event,
        run: Run,
        *,
        received: float | None = None,
        checked: float | None = None,
        queued: bool = False,
    ) -> str:
        """Carry out a Run; the delivery's result (created, exists, failed, queued).

        ``received``: the delivery's arrival (monotonic), for the log line that the benchmark
        reads: from it to the create's answer, before the commit status and the records;
        ``checked``: when the receiver had verified and decided it (handed to a worker).
        ``queued``: a waiting push whose branch is free now (:meth:`drain`)."""
        meta = repo["metadata"]
        namespace, repository = meta["namespace"], meta["name"]
        kind = event.kind
        began = time.monotonic()
        read: CommitFiles | None = None
        try:
            read = self.reader(namespace, spec, event.commit)
            raw_key = None if run.fork else self.api.secret_key(namespace, spec.aesKey)
            aes = None if raw_key is None else parse_key(raw_key)
            built = pipeline.build(
                spec, repository, namespace, event, run=run, read=read, aes_key=aes,
                prefetch=read.prefetch,
            )  # fmt: skip
        except Exception as exc:
            built = pipeline.Failed(f"cannot read the Codeship files: {exc}", str(exc))
        converted = time.monotonic()
        if isinstance(built, pipeline.Failed):
            log.info(
                "%s/%s: %s does not convert: %s",
                namespace,
                repository,
                event.commit[:12],
                built.first_line,
            )
            self.api.event(
                repo, "ConversionFailed", f"{event.commit[:12]} ({event.ref}): {built.message}"
            )
            error = self.tell(
                repo, event.commit, "failure", description=built.first_line, target=""
            )
            self.record(repo, event.delivery, kind, "failed", message=built.first_line, pipeline_name="",
                        branch=(run.branch_key, event.commit), status_error=error)  # fmt: skip
            return "failed"
        manifest = built.manifest
        manifest["metadata"]["ownerReferences"] = [
            {"apiVersion": repo["apiVersion"], "kind": "Repository", "name": repository,
             "uid": meta["uid"]}
        ]  # fmt: skip
        selector = f"{LABEL_REPOSITORY}={label_value(repository)},{LABEL_BRANCH}={label_value(run.branch_key)}"
        if (
            not queued
            and spec.concurrency == "queue"
            and concurrency.running(self.api.pipelines(namespace, selector), run.name)
        ):
            return self._queue(repo, event, run)
        spare = self.spares.take(repo, spec, manifest) if self.spares is not None else None
        try:
            created, obj = self.api.create_pipeline(namespace, manifest, built.secrets)
        except BaseException:
            if spare is not None and self.spares is not None:
                self.spares.release(namespace, spare)
            raise
        if spare is not None and self.spares is not None and not created:
            self.spares.release(namespace, spare)
        if not created:
            self.record(
                repo,
                event.delivery,
                kind,
                "exists",
                message="already created",
                pipeline_name=run.name,
            )
            return "exists"
        if received is not None:
            now = time.monotonic()
            waited = read.waited if read is not None else 0.0
            handed = checked if checked is not None else received
            log.info(
                "pipeline %s created %.3fs after receipt (checked %.3fs, queued %.3fs,"
                " read %.3fs, converted %.3fs, created %.3fs; %d forge calls)",
                run.name, now - received, handed - received, began - handed, waited,
                converted - began - waited, now - converted, read.calls if read else 0,
            )  # fmt: skip
        if spare is not None and self.spares is not None:
            self.spares.hand_over(namespace, spare, obj)
        if spec.concurrency == "supersede":
            # Listed after the create (the newer one is in it and skipped): off the path
            # the benchmark times.
            self._supersede(namespace, obj, self.api.pipelines(namespace, selector))
        error = self.tell(
            repo,
            event.commit,
            "pending",
            description="created",
            target=link(self.settings, namespace, run.name),
        )
        self.record(repo, event.delivery, kind, "created", message="", pipeline_name=run.name,
                    branch=(run.branch_key, event.commit), status_error=error)  # fmt: skip
        return "created"

    def _supersede(self, namespace: str, newer: Manifest, siblings: list[Manifest]) -> None:
        name = newer["metadata"]["name"]
        for old in concurrency.to_supersede(newer, siblings):
            patch = {
                "metadata": {"annotations": {pipeline.ANNOTATION_SUPERSEDED_BY: name}},
                "spec": {"cancel": True},
            }
            try:
                self.api.patch_pipeline(namespace, old, patch)
            except Exception as exc:
                log.warning("pipeline %s not superseded: %s", old, exc)
                continue
            target = next(s for s in siblings if s["metadata"]["name"] == old)
            self.api.event(target, "Superseded", f"Superseded by {name}", "Normal")

    def _queue(self, repo: Manifest, event: Event, run: Run) -> str:
        """Queue: the push is written to the Repository's ``status.queued`` (queue.py) and
        created by whichever replica sees its branch's running pipeline end (:meth:`drain`)."""
        meta = repo["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        new = queue.entry(event, run)
        for _ in range(5):
            fresh = self.api.repository(namespace, name, fresh=True)
            if fresh is None:
                return "failed"
            waiting = queue.add((fresh.get("status") or {}).get("queued") or [], new)
            if waiting is None:
                self.record(repo, event.delivery, event.kind, "failed", message=queue.FULL,
                            pipeline_name=run.name)  # fmt: skip
                self.tell(repo, event.commit, "error", description=queue.FULL, target="")
                return "failed"
            try:
                written = self.api.patch_repository_status(
                    namespace, name, {"queued": waiting},
                    resource_version=fresh["metadata"]["resourceVersion"],
                )  # fmt: skip
            except ApiException as exc:
                if exc.status != 409:
                    raise
                continue
            kept = (written.get("status") or {}).get("queued") or []
            if any(q.get("pipeline") == run.name for q in kept):
                break
            # A Repository CRD older than status.queued pruned it (an upgrade under way).
            log.warning("repository %s/%s: status.queued not kept; retrying", namespace, name)
            time.sleep(1)
        else:
            raise RuntimeError(f"repository {namespace}/{name}: status.queued not written")
        self.record(repo, event.delivery, event.kind, "queued", message="waits for the running one",
                    pipeline_name=run.name, branch=(run.branch_key, event.commit))  # fmt: skip
        self.tell(repo, event.commit, "pending", description="queued", target="")
        # The running one may have ended between the siblings' read and the write above.
        self.drain(namespace, name, run.branch_key)
        return "queued"

    def drain(self, namespace: str, name: str, branch_key: str) -> None:
        """Start the push of ``branch_key`` that waited longest, if none of that branch runs.

        Level-triggered: decided from the Repository's status and the Pipelines that exist,
        called when a run of the branch ends and on every resync; the Pipeline's name is
        deterministic, so two replicas draining at once create it once."""
        seen = self.api.repository(namespace, name)
        if seen is None or not queue.first(
            (seen.get("status") or {}).get("queued") or [], branch_key
        ):
            return  # the common case, from the watch; the write in _queue drains on its own
        repo = self.api.repository(namespace, name, fresh=True)
        if repo is None:
            return
        waiting = (repo.get("status") or {}).get("queued") or []
        head = queue.first(waiting, branch_key)
        if head is None:
            return
        pipeline_name = str(head["pipeline"])
        selector = (
            f"{LABEL_REPOSITORY}={label_value(name)},{LABEL_BRANCH}={label_value(branch_key)}"
        )
        if concurrency.running(self.api.pipelines(namespace, selector), pipeline_name):
            return
        spec = RepositorySpec.model_validate(repo["spec"], strict=False)
        event = queue.event(head)
        run = decide(spec, name, repo["metadata"]["uid"], event)
        if isinstance(run, Run):
            self.handle(repo, spec, event, run, queued=True)
        else:  # the Repository changed while it waited (its branches, pull requests off)
            reason = f"not run: {run.reason}"
            self.tell(repo, event.commit, "error", description=reason[:140], target="")
        self._dequeue(namespace, name, pipeline_name)

    def _dequeue(self, namespace: str, name: str, pipeline_name: str) -> None:
        for _ in range(5):
            fresh = self.api.repository(namespace, name, fresh=True)
            if fresh is None:
                return
            waiting = (fresh.get("status") or {}).get("queued") or []
            kept = queue.remove(waiting, pipeline_name)
            if len(kept) == len(waiting):
                return
            try:
                self.api.patch_repository_status(
                    namespace, name, {"queued": kept},
                    resource_version=fresh["metadata"]["resourceVersion"],
                )  # fmt: skip
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
