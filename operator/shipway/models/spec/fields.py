"""The spec's shared field types and limits: Codeship's service names, commands as a string or
a list, the nesting depth of steps, and the schema note of a field that takes several JSON types."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from shipway.models.base import UNION_SCHEMA_NOTE

SERVICE_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$"
"""Codeship's service names as projects have them: ``webApp``, ``test/php-7.2``, ``my_db``.
Objects get a DNS-safe form (:mod:`shipway.engine.naming`); other services reach a name
that is no host name by its forms that are."""
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"

MAX_STEPS_PER_LIST = 200
MAX_STEP_DEPTH = 4
"""Nesting levels of ``steps``/``on_fail`` the CRD schema spells out; deeper levels are kept
as-is by the API server and checked by the operator (CRD schemas cannot be recursive)."""

ServiceName = Annotated[str, StringConstraints(pattern=SERVICE_NAME_PATTERN, max_length=63)]

StringOrList = str | list[Annotated[str, StringConstraints(max_length=32768)]]
"""Codeship accepts a command as one string (split like a shell would) or as a list."""


def union(description: str) -> dict[str, Any]:
    """Schema extras for a field that takes several JSON types.

    A structural CRD schema cannot type such a field and CEL cannot see untyped fields, so the
    API server keeps it as-is and the operator checks it, naming the field in its message.
    """
    return {UNION_SCHEMA_NOTE: True, "description": description}
