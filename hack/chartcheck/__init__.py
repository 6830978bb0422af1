"""Checks of the Helm chart (``make chart-check``), and the values table of ``docs/helm.md``.

* every key in ``charts/shipway/values.yaml`` has a comment; keys documented with ``# --``
  (helm-docs' convention) are rows of the table in ``docs/helm.md`` (installing with Helm),
  between ``<!-- values-table:start -->`` and ``<!-- values-table:end -->``; ``--write``
  regenerates it, the check fails when it drifts;
* ``helm lint --strict`` and ``helm template`` succeed for each supported shape of values
  (namespaced, several namespaces, all namespaces, HA, no peering, no RBAC) and fail, with
  the chart's own message, for the combinations it refuses.

Usage: ``python -m chartcheck [--helm PATH] [--write]`` (with ``hack`` on the path).

The value sets tried are in ``cases``, the values table in ``values``, the renders checked
in ``render``.
"""
