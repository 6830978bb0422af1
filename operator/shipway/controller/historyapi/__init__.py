"""The history read API (``history.shipway.dev``), served by the operator behind an APIService.

``frontproxy`` decides whom a request comes from (only the API server's front proxy may say);
``server`` answers it: a SubjectAccessReview for that user, then the store. The wire format
and the access rules are pure, in ``shipway.history.api``.
"""
