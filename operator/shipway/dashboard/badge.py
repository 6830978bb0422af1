"""The status badge: a small SVG saying a project's branch's last phase (pure)."""

from __future__ import annotations

from html import escape

COLOURS = {
    "Succeeded": "#2ea44f",
    "Failed": "#cb2431",
    "Cancelled": "#6a737d",
    "Running": "#0366d6",
    "Pending": "#dbab09",
    "AwaitingApproval": "#dbab09",
}
CHAR_WIDTH = 7  # Verdana 11px, near enough for a badge


def badge(phase: str | None, label: str = "shipway") -> str:
    """The SVG; ``phase`` None: no run of that branch (or none the user may see)."""
    text = (phase or "unknown").lower()
    colour = COLOURS.get(phase or "", "#9f9f9f")
    left = len(label) * CHAR_WIDTH + 10
    right = len(text) * CHAR_WIDTH + 10
    width = left + right
    label_e, text_e = escape(label), escape(text)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label_e}: {text_e}"><title>{label_e}: {text_e}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{label_e}</text>'
        f'<text x="{left + right / 2}" y="14">{text_e}</text></g></svg>'
    )
