"""The one base class for everything a user can cause and fix.

A :class:`TfcompatError` is bad input or an unreadable file: the CLI prints its message as one line
(JSON in JSON mode) and exits 2. Any other exception that reaches the CLI is a tfcompat bug
("internal error", exit 2, traceback with -v).
"""

from __future__ import annotations


class TfcompatError(ValueError):
    """Bad input a user can fix (file, line or field, what is wrong): one line, exit 2."""
