"""``python -m theory``: run the symbolic certificate and print the derivation report.

Options: ``--json`` (machine-readable ``{"checks": [...], "passed": bool}``), ``--out DIR`` (also write
``DIR/derivations.md``), ``--quick`` (skip the largest sizes), ``--exhaustive`` (add the slow fully
symbolic single-shot certificates). Exit status 1 if any identity fails; an invalid argument prints one line
naming it and exits with status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from theory._validation import OneLineParser


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (its options are in the module doc)."""
    parser = OneLineParser(
        prog="python -m theory",
        description="Symbolic certificate of the MSE neural-collapse identities (math §3.1, "
                    "§3.3, §3.4, §5.1, §6.1-6.4): "
                    "prints the derivation report (Markdown + LaTeX) with a PASS/FAIL table.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON {checks: [...], passed: "
                                                            "bool} instead of Markdown")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory to write derivations.md (and derivations.json) (default: print only)")
    parser.add_argument("--quick", action="store_true", help="skip the largest sizes")
    parser.add_argument("--exhaustive", action="store_true",
                        help="add fully symbolic single-shot certificates that take 10-60 s each")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"argument --out: {args.out} exists and is not a directory")

    from theory.symbolic import run_certificate

    cert = run_certificate(quick=args.quick, exhaustive=args.exhaustive)
    md = cert.markdown()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "derivations.md").write_text(md, encoding="utf-8")
        (args.out / "derivations.json").write_text(json.dumps(cert.to_json(), indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(cert.to_json(), indent=2))
    else:
        print(md)
        if args.out is not None:
            print(f"\nwrote {args.out / 'derivations.md'}", file=sys.stderr)
    return 0 if cert.passed else 1


if __name__ == "__main__":
    sys.exit(main())
