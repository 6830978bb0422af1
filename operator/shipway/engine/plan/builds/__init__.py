"""Image builds while planning: which to run, their state, and which steps they hold (pure).

A service with ``build`` is built once per pipeline, by one pod, when a remaining step needs
it: a step runs its service and every service it links (``links``/``depends_on``), so it
needs the images of all of those that have a build. Builds start together once the checkout
is in place, so independent builds run in parallel; a step starts when the builds it needs
have all pushed their image, and runs it by digest. A failed build fails each step that
needed it, at the moment that step would have started (Codeship's order: parallel siblings
run on, later steps are skipped). Builds no remaining step needs (filtered by
``tag``/``exclude``) never run.

A build's state follows from its status record and its pod, like a step's: the record
remembers a result, the pod tells what the record lacks.
"""

from shipway.engine.plan.builds.state import BuildState, Gate, build_secret_wanted
from shipway.engine.plan.builds.tracker import Builds

__all__ = ["BuildState", "Builds", "Gate", "build_secret_wanted"]
