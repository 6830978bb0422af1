"""``python -m chartcheck [--helm PATH] [--write]`` (``make chart-check``, ``make chart-readme``)."""

from __future__ import annotations

import argparse
import sys

import chartcheck
from chartcheck.cases import BAD, GOOD
from chartcheck.render import check_helm, check_history_api, check_webhook
from chartcheck.values import HELM_DOC, VALUES, doc_with_table, parse_values, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chartcheck", description=chartcheck.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--helm", help="helm binary (default: skip the helm checks)")
    parser.add_argument("--write", action="store_true", help="rewrite docs/helm.md's values table")
    args = parser.parse_args(argv)
    rows, bare = parse_values(VALUES.read_text())
    problems = [f"values.yaml: key {key} has no comment" for key in bare]
    doc = HELM_DOC.read_text()
    wanted = doc_with_table(doc, table(rows))
    if args.write:
        HELM_DOC.write_text(wanted)
    elif wanted != doc:
        problems.append(
            "docs/helm.md's values table is out of date with charts/shipway/values.yaml;"
            " run `make chart-readme`"
        )
    if args.helm:
        problems.extend(check_helm(args.helm))
        problems.extend(check_webhook(args.helm))
        problems.extend(check_history_api(args.helm))
    for problem in problems:
        print(f"chart-check: {problem}", file=sys.stderr)
    if not problems:
        print(f"chart-check: ok ({len(rows)} documented values"
              + (f", {len(GOOD)} good and {len(BAD)} refused value sets" if args.helm else "") + ")")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
