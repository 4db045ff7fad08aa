"""``python -m promptsg list [KIND]``: what each registry holds."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from promptsg.registry import KINDS

    parser = argparse.ArgumentParser(prog='promptsg', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    ls = sub.add_parser('list', help='list registered components')
    ls.add_argument('kind', nargs='?', choices=sorted(KINDS), help='only this kind')
    ls.add_argument('--all', action='store_true', help="include mmengine's components")
    args = parser.parse_args(argv)

    for kind in [args.kind] if args.kind else list(KINDS):
        registry = KINDS[kind]
        names = registry.names() if args.all else sorted(_own(registry))
        print(f'{kind} ({len(names)}): {", ".join(names) or "-"}')
    return 0


def _own(registry) -> list[str]:
    registry.import_from_location()
    return list(registry.module_dict)


if __name__ == '__main__':
    sys.exit(main())
