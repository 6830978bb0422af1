"""Generate the Pipeline CRD from the pydantic models, the one schema source.

``python -m shipway.compiler.crd --write`` writes ``crds/`` and the Helm chart's copy; ``--check``
fails when either differs from what the models say (CI runs it).

Kubernetes wants a *structural* schema: no ``$ref``, no recursion, a type on every node, no
types inside ``anyOf``. So references are inlined, the recursive ``steps``/``on_fail`` lists are
spelled out to :data:`MAX_STEP_DEPTH` levels (deeper levels are kept as-is and checked by the
operator), and Codeship's "string or list" fields become schemaless nodes checked by CEL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from shipway import GROUP, KIND, PLURAL, VERSION
from shipway.models import PipelineSpec, PipelineStatus
from shipway.models.approval import APPROVAL_RULES, APPROVAL_VARIABLES, CREATE_RULE
from shipway.models.base import UNION_SCHEMA_NOTE
from shipway.models.repository import RepositorySpec, RepositoryStatus
from shipway.models.spec import ADMISSION_RULES, MAX_STEP_DEPTH

Schema = dict[str, Any]
RULE_DEPTH = 2
"""Step levels that carry CEL rules (top-level steps and their children)."""
ROOT = Path(__file__).resolve().parents[3]
CRD_FILES = (
    Path("crds/shipway.dev_pipelines.yaml"),
    Path("charts/shipway/crds/shipway.dev_pipelines.yaml"),
)
REPOSITORY_CRD_FILES = (
    Path("crds/shipway.dev_repositories.yaml"),
    Path("charts/shipway/crds/shipway.dev_repositories.yaml"),
)
POLICY_FILES = (
    Path("crds/shipway.dev_pipelines-policy.yaml"),
    Path("charts/shipway/files/pipelines-policy.yaml"),  # see templates/admission-policy.yaml
)
HEADER = "# Generated from operator/shipway/models by `make crd`. Do not edit.\n"
_KEEP = {
    "description",
    "pattern",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "minimum",
    "maximum",
    "enum",
    "format",
    "x-kubernetes-validations",
}
NAME_RULES = [
    {
        "rule": "self.metadata.name.size() <= 63",
        "message": "a Pipeline's name is at most 63 characters (it names pods and labels)",
    },
    {
        "rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "message": "a Pipeline's name is lower-case letters, digits and '-'",
    },
]


class _Converter:
    def __init__(self, defs: dict[str, Schema]) -> None:
        self.defs = defs

    def convert(self, node: Schema, depth: int) -> Schema:
        extras = {k: v for k, v in node.items() if k in _KEEP}
        if node.get(UNION_SCHEMA_NOTE):
            return {"x-kubernetes-preserve-unknown-fields": True, **extras}
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name == "Step":
                if depth > MAX_STEP_DEPTH:
                    return {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "description": "A nested step (checked by the operator at this depth).",
                    }
                depth += 1
            inner = self.convert(self.defs[name], depth)
            if name == "Step" and depth > RULE_DEPTH:
                # Rules on every nesting level would multiply past the CRD's CEL cost budget;
                # deeper levels are checked by the operator with the same messages.
                inner.pop("x-kubernetes-validations", None)
            return {**inner, **extras}
        if "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            types = {o.get("type") for o in options}
            if len(options) == 1:
                inner = self.convert(options[0], depth)
                return {**inner, **extras}
            if types == {"integer", "string"}:
                return {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                    **{k: v for k, v in extras.items() if k == "description"},
                }
            return {"x-kubernetes-preserve-unknown-fields": True, **extras}
        if "const" in node:
            return {"type": "string", "enum": [node["const"]], **extras}
        kind = node.get("type")
        if kind is None:
            preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
            return {"x-kubernetes-preserve-unknown-fields": True, **extras} if preserve else extras
        out: Schema = {"type": kind, **extras}
        if kind == "object":
            if "properties" in node:
                out["properties"] = {
                    key: self.convert(value, depth) for key, value in node["properties"].items()
                }
                if node.get("required"):
                    out["required"] = list(node["required"])
            extra = node.get("additionalProperties")
            patterns = list(node.get("patternProperties", {}).values())
            if len(patterns) == 1:  # key patterns are enforced by a CEL rule instead
                extra = patterns[0]
            if isinstance(extra, dict):
                out["additionalProperties"] = self.convert(extra, depth)
            if "properties" not in node and not isinstance(extra, dict):
                out["x-kubernetes-preserve-unknown-fields"] = True
        elif kind == "array":
            out["items"] = self.convert(node.get("items", {}), depth)
        if "default" in node and node["default"] is not None and node["default"] != []:
            out["default"] = node["default"]
        return out


def openapi_schema(model: type[Any]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _Converter(defs).convert(raw, 1)


def _crd(kind: str, plural: str, *, short_name: str, root: Schema, columns: list[Schema]) -> Schema:
    """A namespaced CustomResourceDefinition of one served and stored version with a status
    subresource: the envelope every Shipway kind shares."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": ["shipway"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def _root(description: str, spec: Schema, status: Schema) -> Schema:
    """The resource's top-level schema: apiVersion, kind, metadata, a required spec, a status."""
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def _column(name: str, path: str, priority: int = 0) -> Schema:
    column: Schema = {"name": name, "type": "string", "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


def _age_column() -> Schema:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def build_crd() -> Schema:
    spec = openapi_schema(PipelineSpec)
    status = openapi_schema(PipelineStatus)
    status["description"] = "What the operator observed and did (written by the operator only)."
    root = _root(
        "A Codeship Pro pipeline (services + steps) run by Shipway, each step in a Pod.",
        spec,
        status,
    )
    root["x-kubernetes-validations"] = NAME_RULES
    columns = [
        _column("Phase", ".status.phase"),
        _column("Progress", ".status.progress"),
        _column("Step", ".status.currentStep"),
        _age_column(),
        _column("Message", ".status.message", priority=1),
    ]
    return _crd(KIND, PLURAL, short_name="pl", root=root, columns=columns)


def build_repository_crd() -> Schema:
    """The Repository CRD (issue 26): a forge's repository whose pushes run pipelines."""
    status = openapi_schema(RepositoryStatus)
    status["description"] = "What the webhook receiver did (written by the operator only)."
    root = _root(
        "A forge's repository whose webhooks create Pipelines.",
        openapi_schema(RepositorySpec),
        status,
    )
    columns = [
        _column("Provider", ".spec.provider"),
        _column("URL", ".spec.url"),
        _column("Last-Delivery", ".status.lastDelivery"),
        _column("Result", ".status.lastResult"),
        _column("Status-Error", ".status.statusError", priority=1),
        _age_column(),
    ]
    return _crd("Repository", "repositories", short_name="repo", root=root, columns=columns)


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors/aliases, which some tools reject."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _policy(
    name: str, operations: list[str], validations: list[Schema], variables: list[Schema] | None
) -> list[Schema]:
    """A ValidatingAdmissionPolicy on Pipeline writes and its binding (Deny)."""
    spec: Schema = {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [GROUP],
                    "apiVersions": [VERSION],
                    "operations": operations,
                    "resources": [PLURAL],
                }
            ]
        },
    }
    if variables:
        spec["variables"] = variables
    spec["validations"] = [{"reason": "Invalid", **rule} for rule in validations]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def build_policy() -> list[Schema]:
    """ValidatingAdmissionPolicies (GA since 1.30) for the rules a CRD schema cannot afford:
    the immutable spec, and manual approvals checked against the caller's own identity
    (``request.userInfo`` and the ``authorizer``, which only admission can see)."""
    name = f"{PLURAL}.{GROUP}"
    return [
        *_policy(name, ["UPDATE"], ADMISSION_RULES, None),
        *_policy(f"{PLURAL}-approvals.{GROUP}", ["UPDATE"], APPROVAL_RULES, APPROVAL_VARIABLES),
        *_policy(f"{PLURAL}-create.{GROUP}", ["CREATE"], [CREATE_RULE], None),
    ]


def render() -> str:
    return HEADER + yaml.dump(build_crd(), Dumper=_Dumper, sort_keys=False, width=100)


def render_repository() -> str:
    return HEADER + yaml.dump(build_repository_crd(), Dumper=_Dumper, sort_keys=False, width=100)


def render_policy() -> str:
    return HEADER + yaml.dump_all(build_policy(), Dumper=_Dumper, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipway.compiler.crd", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the CRD files")
    mode.add_argument("--check", action="store_true", help="fail when a CRD file is stale")
    mode.add_argument("--print", action="store_true", help="print the CRD")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    text, policy = render(), render_policy()
    if args.print:
        sys.stdout.write(text + "---\n" + policy)
        return 0
    stale = []
    files = [(t, text) for t in CRD_FILES] + [(t, policy) for t in POLICY_FILES]
    files += [(t, render_repository()) for t in REPOSITORY_CRD_FILES]
    for target, text in files:
        path = args.root / target
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(str(target))
    if stale:
        print(
            "CRD out of date with operator/shipway/models: "
            + ", ".join(stale)
            + "; run `make crd`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
