"""Codeship command splitting and tag/exclude filters."""

from __future__ import annotations

import pytest

from shipway.compiler.commands import split_command
from shipway.compiler.filters import matches, pattern_error, selected


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("echo hello", ("echo", "hello")),
        ("sh -c 'echo built > /app/a.txt'", ("sh", "-c", "echo built > /app/a.txt")),
        ("make test && make lint", ("make", "test", "&&", "make", "lint")),
        ("cat a | grep b > c", ("cat", "a", "|", "grep", "b", ">", "c")),
        ('echo "two words"', ("echo", "two words")),
        (["sh", "-c", "a && b"], ("sh", "-c", "a && b")),
        (None, None),
    ],
)
def test_commands_split_like_a_shell_but_never_run_one(
    command: str | list[str] | None, argv: tuple[str, ...] | None
) -> None:
    assert split_command(command) == argv


@pytest.mark.parametrize("command", ["", "   ", "echo 'unbalanced"])
def test_empty_or_unbalanced_commands_are_errors(command: str) -> None:
    with pytest.raises(ValueError, match=r"empty|quotation"):
        split_command(command)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("master", "master", True),
        ("master", "master-2", False),
        ("mast", "master", False),
        ("^release/", "release/1.2", True),
        ("^release/", "hotfix/release/1", False),
        ("v[0-9]+$", "v12", True),
        ("^(master|main)$", "main", True),
        ("^(master|main)$", "maintenance", False),
        ("release.*", "release-1", False),
    ],
)
def test_filters_match_the_whole_name_unless_they_are_regexes(
    pattern: str, name: str, expected: bool
) -> None:
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("tag", "exclude", "name", "expected"),
    [
        (None, None, "anything", True),
        ("main", None, "main", True),
        ("main", None, "feature", False),
        (None, "main", "main", False),
        ("^ma", "main", "main", False),
        ("^ma", "main", "master", True),
        ("main", None, "", False),
    ],
)
def test_exclude_wins_over_tag(
    tag: str | None, exclude: str | None, name: str, expected: bool
) -> None:
    assert selected(tag, exclude, name) is expected


def test_invalid_regexes_are_reported_and_plain_strings_never_are() -> None:
    assert pattern_error("^release/(") is not None
    assert pattern_error("release/(") is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("^release/(?=v)", "invalid perl operator"),  # Go has no lookahead
        ("^(a)\\1$", "invalid escape sequence"),  # nor backreferences
        ("^a{1001}$", "invalid repetition size"),  # nor counts above 1000
        ("^release/(", "missing )"),
    ],
)
def test_filters_take_go_syntax_so_perl_only_constructs_are_errors(pattern: str, why: str) -> None:
    problem = pattern_error(pattern)
    assert problem is not None
    assert problem.startswith(f"invalid regular expression {pattern!r}: {why}")


def test_a_catastrophic_pattern_for_backtracking_matches_in_linear_time() -> None:
    """`^(a+)+$` against 'aaa…a!' takes Python's re longer than the universe's age.

    RE2 answers at once; the benchmark measures how long, this test only that it finishes
    (with Python's re it never would) and answers as Go would.
    """
    branch = "a" * 35 + "!"
    assert pattern_error("^(a+)+$") is None
    assert matches("^(a+)+$", branch) is False
    assert selected("^(a+)+$", None, branch) is False
    assert selected(None, "^(a+)+$", "a" * 100_000) is False
    assert matches("^(a+)+$", "a" * 35) is True


def test_a_pipeline_with_a_catastrophic_tag_compiles_and_skips_the_step() -> None:
    from shipway.compiler.pipeline import compile_pipeline
    from tests.unit.builders import spec

    raw = spec(
        [{"service": "a", "command": "true", "tag": "^(a+)+$"}, {"service": "b"}],
        ci={"branch": "a" * 35 + "!"},
    )
    first, second = compile_pipeline(raw).runs
    assert (first.enabled, second.enabled) == (False, True)
