"""The Kubernetes calls Shipway makes, and nothing else: thin, typed, idempotent.

Every call runs in a worker thread on connections of its own (:mod:`.wire`; the official
client's credentials and TLS settings) and decodes the answer as plain JSON: the operator
needs a few fields, not models. "Not found" on delete counts as success, and "already
exists" on create answers None/False for the caller to check whose the object is: that is
what lets the operator repeat any action after a crash without adopting someone else's pod
or claim. An API server that does not answer at all raises a :class:`KubeError` of status 0,
like any passing failure.

By job: :mod:`.errors` (what a failed call raises), :mod:`.wire` (requests on kept-alive
connections, answers parsed in C), :mod:`.caller` (the client, the worker threads and the one
call every request goes through), :mod:`.logs` (the history's pod-log reads), :mod:`.events`
(Events on a Pipeline) and :mod:`.facade` (:class:`Kube`, the typed calls on pods, claims,
Secrets and Pipelines). Callers import from here.
"""

from shipway.controller.kube.errors import KubeError
from shipway.controller.kube.events import EventTarget
from shipway.controller.kube.facade import Kube
from shipway.controller.kube.logs import LogRead, PodLogs

__all__ = ["EventTarget", "Kube", "KubeError", "LogRead", "PodLogs"]
