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
    ("no Docker daemon", "add_docker, a docker.sock volume or docker:dind"),
    ("type: manual", "type: manual"),
    ("none of codeship-steps", "no Codeship files: a services file without steps"),
    ("none of codeship-services", "no Codeship files: no services file"),
    ("not valid YAML", "the project's own file is broken: invalid YAML"),
    ("not valid JSON", "the project's own file is broken: invalid JSON"),
    ("the file is empty", "the project's own file is broken: empty"),
    ("must be a map of services", "the project's own file is broken: not a map of services"),
    ("unknown service", "the project's own file is broken: a step naming no service"),
    ("No closing quotation", "the project's own file is broken: an unbalanced quote"),
    ("must be absolute and not /", "the project's own file is broken: a volume mounted at /"),
)
"""(what the message says, the cause it is counted under): the first that matches."""


def secret_flags(directory: Path) -> dict[str, Any]:
    """The Secrets a project's owner would name: one per service with encrypted variables,
    one per build with encrypted args, one for registry credentials."""
    try:
        services_file = find_file(directory, SERVICES_FILES, None)
        doc = parse_file_text(services_file.read_text(errors="replace"), str(services_file))
    except Exception:  # unreadable: convert_one reports it
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


def cause_of(errors: list[str]) -> str:
    """The one cause a refused project is counted under: the first of CAUSES its errors
    name (a Docker daemon before anything else), else its first error."""
    for needle, cause in CAUSES:
        if any(needle in line for line in errors):
            return cause
    return errors[0].split("\n")[0]


def convert_one(directory: Path) -> tuple[bool, list[str]]:
    """(converts, the error lines) for one project."""
    known = {k: v for k, v in secret_flags(directory).items() if k in fields(Options)}
    options = Options(name=default_name(directory), source={"upload": {}}, **known)
    try:
        convert_directory(directory, options=options)
    except FileError as exc:
        return False, [str(exc)]
    except ConversionError as exc:
        return False, [str(error) for error in exc.errors]
    except Exception as exc:  # an older converter, measured for comparison, may crash
        return False, [f"the converter crashed: {type(exc).__name__}: {exc}"]
    return True, []


def fields(cls: Any) -> set[str]:
    """The options this version of the converter has (older ones lack --args-secret)."""
    return set(getattr(cls, "__dataclass_fields__", {}))


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
        if not ok:
            causes[cause_of(errors)] += 1
        if args.details and not ok:
            print(f"== {project.name}")
            for line in errors:
                print(f"   {line}")
    complete = len(projects) - sum(n for c, n in causes.items() if c.startswith("no Codeship"))
    print(f"{len(projects)} projects, {complete} with both Codeship files")
    print(f"{converted} of {complete} convert; {complete - converted} are refused:")
    for cause, count in causes.most_common():
        print(f"{count:4}  {cause[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
