"""Convert a directory of real Codeship projects, as their owners have them, and count outcomes.

    PYTHONPATH=operator:hack python -m codeship_corpus DIR [--details]

DIR holds one folder per project (its checkout, or at least its Codeship files and what they
name). Nothing of those projects is kept in this repository: you fetch them yourself (see
docs/codeship-examples.md, "Real projects"). Each is converted as a new user would run
``shipway run --dir``, with the project's secrets supplied as Kubernetes Secrets: the
directory uploaded as the source, ``--env-secret`` for every service with encrypted variables,
``--args-secret`` for every build with encrypted args, ``--dockercfg-secret`` when anything
names encrypted registry credentials. Figures only: this asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from shipway.codeship import ConversionError, FileError, Options, convert_directory, default_name
from shipway.codeship.convert import SERVICES_FILES, find_file
from shipway.codeship.yamlfile import parse_file_text

CAUSES: tuple[tuple[str, str], ...] = (
    ("no Docker daemon", "add_docker / docker.sock / dind"),
    ("type: manual", "type: manual"),
    ("not valid YAML", "the project's own file: invalid YAML"),
    ("the file is empty", "the project's own file: empty"),
    ("not valid JSON", "the project's own file: invalid JSON"),
    ("no such file", "the project's own file: a missing file"),
    ("cannot read", "the project's own file: a missing file"),
    ("none of", "no steps file"),
    ("unknown service", "the project's own file: a step naming no service"),
)


def secret_flags(directory: Path) -> dict[str, Any]:
    """The Secrets a project's owner would name: one per service with encrypted variables,
    one per build with encrypted args, one for registry credentials."""
    try:
        services_file = find_file(directory, SERVICES_FILES, None)
        doc = parse_file_text(services_file.read_text(errors="replace"), str(services_file))
    except (FileError, OSError):
        return {}
    if not isinstance(doc, dict):
        return {}
    inner = doc.get("services")
    services = inner if isinstance(inner, dict) else doc
    env: dict[str, str] = {}
    args: dict[str, str] = {}
    for name, body in services.items():
        if not isinstance(body, dict):
            continue
        slug = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-") or "x"
        if "encrypted_env_file" in body or "encrypted_environment" in body:
            env[str(name)] = f"{slug}-env"
        build = body.get("build")
        if isinstance(build, dict) and (
            "encrypted_args_file" in build or "encrypted_args" in build
        ):
            args[str(name)] = f"{slug}-args"
    text = "".join(p.read_text(errors="replace") for p in directory.glob("codeship-*.y*ml"))
    return {
        "env_secrets": env,
        "args_secrets": args,
        "dockercfg_secret": "registry" if "encrypted_dockercfg_path" in text else None,
    }


def cause_of(message: str) -> str:
    for needle, cause in CAUSES:
        if needle in message:
            return cause
    return message


def convert_one(directory: Path) -> tuple[bool, list[str]]:
    """(converts, the error lines) for one project."""
    options = Options(
        name=default_name(directory), source={"upload": {}}, **secret_flags(directory)
    )
    try:
        convert_directory(directory, options=options)
    except FileError as exc:
        return False, [str(exc)]
    except ConversionError as exc:
        return False, [str(error) for error in exc.errors]
    return True, []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--details", action="store_true", help="every error of every project")
    args = parser.parse_args(argv)
    projects = sorted(p for p in args.directory.iterdir() if p.is_dir())
    converted = 0
    causes: Counter[str] = Counter()
    for project in projects:
        ok, errors = convert_one(project)
        converted += ok
        for cause in sorted({cause_of(line) for line in errors}):
            causes[cause] += 1
        if args.details and not ok:
            print(f"== {project.name}")
            for line in errors:
                print(f"   {line}")
    print(f"{converted} of {len(projects)} convert; {len(projects) - converted} are refused")
    for cause, count in causes.most_common():
        print(f"{count:4}  {cause[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
