"""``shipway dashboard``: the web dashboard sits above the command line (it reuses restart's
and approve's logic), so the command line reaches it through this one declared import."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    from shipway.dashboard.serve import register as register_dashboard

    register_dashboard(sub)
