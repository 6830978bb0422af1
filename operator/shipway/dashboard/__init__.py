"""The web dashboard (``shipway dashboard``): runs, the step tree, live and archived logs,
cancel, rerun, approve and reject, a status badge.

It pages runs from the history store (``reader``), so it stays fast at any number of runs,
and acts with the user's own identity (``identity``, ``kube``): on a laptop the user's
kubeconfig, in the cluster the user's bearer token or the user an authenticating proxy names.
Every view is filtered and every action checked by the API server's authorization
(``authz``: SubjectAccessReview), so it can never do more than ``kubectl`` would. The pure
parts (``views``, ``ansi``, ``csrf``, ``badge``) decide; ``app`` is the thin aiohttp shell,
its handlers by job in ``pages``, ``streams`` and ``actions``.
"""
