"""Untrusted strings in human-readable and XML output: node names, paths, sonames, symbols and messages that come
from a scanned environment or from node reports.

``visible`` is the one function for text output: control characters (C0 but tab, DEL, C1), the Unicode line and
paragraph separators, bidirectional overrides and lone surrogates are shown as escapes (``\\x1b``, ``\\n``,
``\\u2028``), so that a crafted name cannot start a new line (a forged ``Result: PASS``), move the cursor, set the
terminal's title or reorder what is shown. Everything else, backslashes included, is printed as it is: a plain
string comes out unchanged.

``xml_safe`` keeps XML 1.0 well-formed: the characters that XML 1.0 does not allow at all (C0 but tab, newline and
carriage return; lone surrogates; U+FFFE, U+FFFF) become the same visible escapes; ElementTree escapes the rest.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_UNSAFE_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    named = _NAMED.get(c)
    if named is not None:
        return named
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def visible(text: str) -> str:
    """`text` safe to print on a terminal as one line: control characters shown as escapes (tab kept)."""
    if _UNSAFE_TEXT.search(text) is None:
        return text
    return _UNSAFE_TEXT.sub(_escape, text)


def xml_safe(text: str) -> str:
    """`text` with the characters XML 1.0 does not allow shown as escapes (newline, tab, carriage return kept)."""
    if _UNSAFE_XML.search(text) is None:
        return text
    return _UNSAFE_XML.sub(_escape, text)
