"""Codeship's image_tag templates: what parses, what is refused, how values render."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipway.compiler.templates import (
    CODESHIP_VARIABLES,
    TemplateError,
    as_tag,
    go_time,
    parse,
    render,
    values_from,
)

CI = {
    "CI": "true",
    "CI_NAME": "shipway",
    "CI_BUILD_ID": "uid-1",
    "CI_BRANCH": "feature/Login",
    "CI_COMMIT_ID": "0123456789abcdef0123456789abcdef01234567",
    "CI_TIMESTAMP": "1795780740",
    "CI_STRING_TIME": "2026-11-27T11:59:00Z",
}
VALUES = values_from(
    CI,
    build_tag="feature/Login",
    step_name="push it",
    service="app",
    image_name="registry.example/team/app",
    created=datetime(2026, 11, 27, 11, 59, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("latest", "latest"),
        ("{{ .Branch }}", "feature/Login"),
        ("{{.Branch}}-{{ .ShortCommitID }}", "feature/Login-0123456"),
        ("v1-{{ .CommitID }}", "v1-0123456789abcdef0123456789abcdef01234567"),
        ("{{ .ServiceName }}.{{ .Branch }}", "app.feature/Login"),
        ("a {{- .Ci -}} b", "atrueb"),
        ("{{/* a comment */}}{{ .CiName }}", "shipway"),
        ("{{ .Timestamp }}", "1795780740"),
        ("{{ .Ref }}", "feature/Login"),
        ("{{ .StepName }}", "push it"),
        ("{{ .ImageName }}", "registry.example/team/app"),
        ("{{ .BuildID }}", "uid-1"),
    ],
)
def test_templates_render_the_build_values(source: str, expected: str) -> None:
    assert render(parse(source), VALUES) == expected


def test_every_documented_codeship_variable_is_known() -> None:
    for name in CODESHIP_VARIABLES:
        assert parse(f"{{{{ .{name} }}}}").variables == (name,)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ .Nope }}", "unknown variable .Nope"),
        ("{{ .branch }}", "unknown variable .branch"),
        ('{{ printf "%.7s" .CommitID }}', "only {{ .Name }} of a build value is supported"),
        ("{{ .Branch | lower }}", "only {{ .Name }}"),
        ("{{ if .Branch }}x{{ end }}", "only {{ .Name }}"),
        ("{{ .Time.Unix }}", "only {{ .Name }}"),
        ("{{ .Branch ", "unclosed or stray braces"),
        ("tag-}}", "unclosed or stray braces"),
    ],
)
def test_what_cannot_render_is_refused_naming_the_part(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace(".", r"\.").replace("|", r"\|")):
        parse(source)


def test_an_empty_value_is_an_error_naming_the_variable() -> None:
    values = dict(VALUES, CommitID="", ShortCommitID="")
    with pytest.raises(TemplateError, match=r"\.CommitID is empty in this build"):
        render(parse("{{ .Branch }}-{{ .CommitID }}"), values)


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("feature/Login-0123456", "featureLogin-0123456"),
        ("v1.2.3", "v1.2.3"),
        ("-.leading", "leading"),
        ("a b:c@d", "abcd"),
        ("x" * 200, "x" * 128),
        ("///", ""),
    ],
)
def test_characters_a_tag_cannot_hold_are_stripped_as_codeship_does(text: str, tag: str) -> None:
    assert as_tag(text) == tag


def test_time_prints_as_go_does() -> None:
    assert go_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05 +0000 UTC"
    assert (
        go_time(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC))
        == "2026-01-02 03:04:05.12 +0000 UTC"
    )
