"""Service names as projects have them (``webApp``, ``test/php-7.2``), checked for what
Kubernetes makes of them: every object takes a DNS-safe form (``webapp``, ``test-php-7-2``),
so two services that meet in one form would share a container name and a host name."""

from __future__ import annotations

from collections.abc import Iterable

from shipway.compiler.dnsnames import dns_label
from shipway.compiler.errors import FieldError


def name_collisions(services: Iterable[str]) -> list[FieldError]:
    """An error for every service whose DNS-safe form a service before it (in name order:
    the API server hands the webhook its maps sorted, a file has its own order) has."""
    first: dict[str, str] = {}
    errors: list[FieldError] = []
    for name in sorted(services):
        form = dns_label(name)
        if form in first:
            errors.append(
                FieldError(
                    f"spec.services.{name}",
                    f"{name!r} and {first[form]!r} both become {form!r} in Kubernetes (container "
                    "and host names are lower-case letters, digits and '-'): rename one",
                )
            )
        else:
            first[form] = name
    return errors
