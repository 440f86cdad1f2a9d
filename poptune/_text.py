"""Text from experiments, trials and users, made safe to print on a terminal.

A trial name, a config value, a metric name or an error message can hold rich markup
(``[bold]``, ``[/]``: rich would apply it, or raise ``MarkupError``) and control characters
(an escape sequence sets the window title or clears the screen). :func:`safe_text` shows the
control characters as escapes; :func:`plain_text` also keeps rich from reading markup.
"""

from __future__ import annotations

import re
from typing import Any

#: what a terminal must not receive from an experiment's files: C0/C1 control characters
#: (ESC starts the sequences that set the window title, clear the screen, recolour or hide
#: text), DEL, bidirectional overrides and Unicode line separators
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069]")


def safe_text(value: Any, newlines: bool = False) -> str:
    """``str(value)`` with every character a terminal would act on written as a visible
    escape (``\\x1b``, ``\\u202e``); printable text is kept. ``newlines`` keeps ``\\n`` (and
    ``\\t``) for multi-line messages.

    >>> safe_text("T\\x1b]0;title\\x07 x[/]")
    'T\\\\x1b]0;title\\\\x07 x[/]'
    """
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if newlines and char in "\n\t":
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(escape, str(value))


def plain_text(value: Any, style: str = "") -> Any:
    """``value`` as a rich ``Text`` printed as it is: no markup (``[bold]``, ``[/]``), no
    emoji codes, no highlighting, no control characters (see :func:`safe_text`)."""
    from rich.text import Text

    return Text(safe_text(value), style=style)
