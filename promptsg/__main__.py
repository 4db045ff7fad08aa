"""``python -m promptsg list [KIND]``: the names a config can give each kind of component."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from promptsg.registry import KINDS

    parser = argparse.ArgumentParser(prog='promptsg', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    ls = sub.add_parser(
        'list',
        help='list the registered components',
        description="Every name a config can use under default_scope='promptsg': promptsg's "
        "own components, plugins', and mmengine's reached through promptsg's registries.",
    )
    ls.add_argument('kind', nargs='?', choices=list(KINDS), help='only this kind')
    ls.add_argument('--own', action='store_true', help="only promptsg's components (and plugins')")
    args = parser.parse_args(argv)

    for kind in [args.kind] if args.kind else list(KINDS):
        registry = KINDS[kind]
        names = sorted(_own(registry)) if args.own else registry.names()
        print(f'{kind} ({len(names)}): {", ".join(names) or "-"}')
    return 0


def _own(registry) -> list[str]:
    registry.import_from_location()
    return list(registry.module_dict)


if __name__ == '__main__':
    sys.exit(main())
