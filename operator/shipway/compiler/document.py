"""A whole Pipeline document (metadata and spec) checked as the API server will store it.

``shipway validate``, the admission webhook and the operator all compile a Pipeline with
:func:`compile_doc`, and the first two report its problems with :func:`problem_lines`, so a
user reads the same lines whichever of them refused it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shipway.compiler.errors import FieldError, InvalidSpecError
from shipway.compiler.pipeline import CompiledPipeline, compile_pipeline

NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_metadata(doc: Mapping[str, Any]) -> list[FieldError]:
    """The name rules the CRD enforces too (a name becomes pod names and label values)."""
    meta = doc.get("metadata") or {}
    name = meta.get("name") or (meta.get("generateName", "") + "xxxxx")
    if not isinstance(name, str) or not name.strip("x"):
        return [FieldError("metadata.name", "a Pipeline needs a name or generateName")]
    if len(name) > 63 or not NAME.fullmatch(name):
        return [
            FieldError("metadata.name", f"{name!r}: at most 63 lower-case letters, digits and '-'")
        ]
    return []


def compile_doc(doc: Mapping[str, Any]) -> CompiledPipeline:
    """The same checks as the operator, plus the name rules the CRD enforces."""
    errors = check_metadata(doc)
    try:
        compiled = compile_pipeline(doc.get("spec"))
    except InvalidSpecError as exc:
        raise InvalidSpecError([*errors, *exc.errors]) from None
    if errors:
        raise InvalidSpecError(errors)
    return compiled


def display_name(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "<unnamed>")


def problem_lines(doc: Mapping[str, Any], error: InvalidSpecError) -> list[str]:
    """``Pipeline NAME is invalid:`` and one indented line per field error."""
    return [f"Pipeline {display_name(doc)} is invalid:", *(f"  {e}" for e in error.errors)]


def review(doc: Mapping[str, Any]) -> str | None:
    """What is wrong with ``doc`` in the words of ``shipway validate``, or None if nothing."""
    try:
        compile_doc(doc)
    except InvalidSpecError as exc:
        return "\n".join(problem_lines(doc, exc))
    return None
