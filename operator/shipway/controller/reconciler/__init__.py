"""The imperative shell: read a pipeline and its pods, ask the planner, carry out the plan.

The caller runs one reconcile per pipeline at a time (the work queue sees to it); different
pipelines proceed concurrently. State lives in the cluster (the Pipeline's status and its
pods); the caches here only save API calls and are rebuilt from the cluster after a restart.

By job: :mod:`.shell` (one reconcile from start to end), :mod:`.pods` (which pods are the
pipeline's), :mod:`.carry` (compile, plan, create), :mod:`.status` (the status read and
written), :mod:`.coalesce` (when a big pipeline's write may wait), :mod:`.api` (the calls it
needs).
"""

from shipway.controller.reconciler.api import KubeApi
from shipway.controller.reconciler.shell import Reconciler

__all__ = ["KubeApi", "Reconciler"]
