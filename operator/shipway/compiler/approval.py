"""Where manual gates (``type: manual`` groups) may stand in the step tree, and finding them.

A gate pauses the whole pipeline, so it must be reached when everything before it is over:
in the top-level list or in serial (or manual) groups, never inside a parallel group (its
siblings would run on while it waits) nor among ``on_fail`` steps (which run only on a
failure, when nothing may wait any more). Its place in the spec (``spec.steps[2]``) is its
name in ``spec.approvals`` and ``status.approvals``: unique, and fixed since the spec is.
"""

from __future__ import annotations

from collections.abc import Iterator

from shipway.compiler.errors import FieldError
from shipway.compiler.tree import GroupNode, Node
from shipway.models.approval import MAX_GATES


def gates(root: GroupNode) -> list[GroupNode]:
    """Every manual group reachable by the walk, in the order it reaches them."""
    return [node for node, _ in _groups(root.children, False)]


def _groups(nodes: tuple[Node, ...], fenced: bool) -> Iterator[tuple[GroupNode, bool]]:
    """Manual groups below ``nodes``, each with whether a parallel group or on_fail holds it."""
    for node in nodes:
        if isinstance(node, GroupNode):
            if node.kind == "manual":
                yield node, fenced
            inner = fenced or node.kind == "parallel"
            yield from _groups(node.children, inner)
        yield from _groups(node.on_fail, True)


def manual_errors(root: GroupNode) -> list[FieldError]:
    """A manual group inside a parallel group or an on_fail list; more than MAX_GATES."""
    errors: list[FieldError] = []
    found = list(_groups(root.children, False))
    for node, fenced in found:
        if fenced:
            errors.append(
                FieldError(
                    f"{node.field}.type",
                    "a manual group pauses the whole pipeline: it cannot be inside a "
                    "parallel group or an on_fail list (put it in the top-level steps or a "
                    "serial group)",
                )
            )
    if len(found) > MAX_GATES:
        errors.append(FieldError("spec.steps", f"{len(found)} manual groups; at most {MAX_GATES}"))
    return errors
