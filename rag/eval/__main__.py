"""`python -m rag.eval retrieval ...` and `python -m rag.eval answers ...`.

Each subcommand lives in its own module (rag/eval/retrieval.py, rag/eval/answers.py), which
exposes ``register(subparsers)`` adding its parser with ``set_defaults(func=...)``.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from rag.eval.answers import register as register_answers
    from rag.eval.claims import register as register_claims
    from rag.eval.datasets import DatasetMissing
    from rag.eval.floor import register as register_floor
    from rag.eval.retrieval import register as register_retrieval

    p = argparse.ArgumentParser(
        prog="python -m rag.eval", description="Evaluate retrieval, answers or the claim checker."
    )
    p.add_argument(
        "--tune",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a tuned constant of rag/tuning.py for this run (repeatable), e.g. --tune rrf_k=30",
    )
    sub = p.add_subparsers(dest="command", required=True)
    register_retrieval(sub)
    register_answers(sub)
    register_floor(sub)
    register_claims(sub)
    args = p.parse_args(argv)
    if args.tune:
        from rag.tuning import tune

        try:
            tune(args.tune)
        except ValueError as e:
            p.error(str(e))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except DatasetMissing as e:  # the path and the fix, without a traceback
        print(f"python -m rag.eval {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
