"""Command-line plumbing: user errors become one line on stderr and exit status 2."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from promptsg.errors import PromptSGError

#: ``TypeError`` text of a component given an argument it does not take.
_BAD_KWARG = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


def run_cli(main: Callable[[], object]) -> None:
    """Call ``main``; report a :class:`PromptSGError` (or a config argument typo) in one line."""
    try:
        main()
    except PromptSGError as e:
        _fail(f'error: {e}')
    except TypeError as e:
        m = _BAD_KWARG.search(str(e))
        if m is None:
            raise
        _fail(f"error: {m.group(1)} has no argument '{m.group(2)}' (check the config)")


def _fail(message: str) -> None:
    print(' '.join(message.split()), file=sys.stderr)
    sys.exit(2)
