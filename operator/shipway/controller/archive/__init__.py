"""The history's shell: run records flushed in batches, finished pods' logs archived, old
Pipelines pruned and old records expired, in one background task of the operator.

Nothing here stands in the way of a step: the reconciler never waits for the store. Records
are written every ``flush_seconds`` for the pipelines that changed meanwhile (one
transaction, whatever the number of events; a running one's at most every 30 s); a finished
pod's logs are read once each (one API call per container, in the history's own threads)
and each round's pods stored in one transaction, so an operator killed mid-way leaves either
all of a pod's logs or none, and the next one archives them once. When the store is down
everything waits and is tried again with backoff (a log read that fails too, pod by pod); a
Pipeline whose logs are not archived is never pruned, and a metric and an Event say the
archive is behind.

By job: ``runs`` (what the archiver knows of each run, and its records), ``podlogs`` (a
finished pod's logs read and masked), ``pruning`` (which finished Pipelines go),
``archiver`` (the loop that ties them to the store).
"""

from shipway.controller.archive.archiver import Archiver
from shipway.controller.archive.runs import HistoryApi

__all__ = ["Archiver", "HistoryApi"]
