"""The METADATA header reader (probes/packages.parse_headers) against packaging.metadata.parse_email, the parser
it replaced for speed (issue 16): the fields the probes use must come out the same for every input, the odd
ones included (CR line ends, continuations, a body without its blank line, mbox "From " lines, bytes that are
not UTF-8)."""

from __future__ import annotations

import random

import pytest
from packaging.metadata import parse_email

from tfcompat.probes.packages import parse_headers
from tfcompat.probes.rootfs import CAPS

# The fields the probes read, and two that exercise single-use handling in packaging.
FIELDS = ("name", "version", "requires-dist", "requires-python", "summary", "license")


def oracle(data: bytes) -> dict[str, list[str]]:
    """What packaging.metadata makes of `data`, whitespace collapsed as parse_headers does."""
    raw, unparsed = parse_email(data)
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            out[key.replace("_", "-")] = [" ".join(value.split())]
        elif isinstance(value, list):
            out[key.replace("_", "-")] = [" ".join(str(v).split()) for v in value]
    for key, bad in unparsed.items():
        out.setdefault(key.lower(), []).extend(" ".join(v.split()) for v in bad if isinstance(v, str))
    return {k: v for k, v in out.items() if k in FIELDS}


def ours(data: bytes) -> dict[str, list[str]]:
    return {k: v for k, v in parse_headers(data).items() if k in FIELDS}


CASES = {
    "plain": b"Metadata-Version: 2.1\nName: tensorflow\nVersion: 2.21.0\nRequires-Dist: numpy>=1.26\n\nbody\n",
    "crlf": b"Name: foo\r\nVersion: 1.0\r\n\r\nRequires-Dist: bar\r\n",
    "cr only": b"Name: foo\rVersion: 1.0\rRequires-Dist: a\r\rRequires-Dist: body\r",
    "continuation": b"Name: foo\nLicense: Apache 2.0\n  with the LLVM\n\texception\nVersion: 1\n",
    "body without blank line": b"Name: foo\nVersion: 1\n# Title\nRequires-Dist: evil\n",
    "name with a space": b"Name: foo\nRequires Dist: x\nVersion: 1\n",
    "from line first": b"From nobody\nName: foo\nVersion: 1\n",
    "from line between": b"Name: foo\nFrom x\n continued\nVersion: 1\n",
    "colon first": b"Name: foo\n: nameless\n more\nVersion: 1\n",
    "leading continuation": b"  stray\nName: foo\nVersion: 1\n",
    "case of names": b"NAME: foo\nversion: 1\nrequires-DIST: a\nRequires-Dist: b\n",
    "twice": b"Name: foo\nName: bar\nVersion: 1\nVersion: 2\n",
    "utf-8": "Name: foo\nSummary: caf\u00e9 \u2603\nVersion: 1\n".encode(),
    "not utf-8": b"Name: foo\nSummary: caf\xe9\nVersion: 1\n",
    "empty value": b"Name:\nVersion: 1\nRequires-Python:\n",
    "no space after colon": b"Name:foo\nVersion:1\n",
    "spaces in value": b"Name:   foo  \nVersion: 1\t\n",
    "control characters": b"Name: fo\x0bo\nVer\x00sion: 1\nVersion: 2\n",
    "whitespace-only line": b"Name: foo\n   \nVersion: 1\n",
    "empty": b"",
    "no newline at end": b"Name: foo\nVersion: 1",
    # each way two line ends make a blank line, a body field after it
    "blank line LF CR": b"Name: foo\nVersion: 1\n\rRequires-Dist: body\n",
    "blank line LF CRLF": b"Name: foo\nVersion: 1\n\r\nRequires-Dist: body\n",
    "blank line CR CRLF": b"Name: foo\rVersion: 1\r\r\nRequires-Dist: body\r",
    "blank line CRLF LF": b"Name: foo\r\nVersion: 1\r\n\nRequires-Dist: body\n",
    # a long description past the cap: the caller reads CAPS["metadata"] bytes; the headers are all there
    "CR only past the cap": (b"Name: foo\rVersion: 1\r\r" + b"line of the body\r" * (CAPS["metadata"] // 16))[
        : CAPS["metadata"]
    ],
    "LF past the cap": (b"Name: foo\nVersion: 1\n\n" + b"line of the body\n" * (CAPS["metadata"] // 16))[
        : CAPS["metadata"]
    ],
    # the cap falls between the CR and the LF of a header's CRLF: that header is whole
    "CRLF cut between CR and LF": b"Name: foo\r\nVersion: 1\r\nRequires-Dist: ".ljust(CAPS["metadata"] - 1, b"p")
    + b"\r",
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_same_fields_as_packaging(data):
    assert ours(data) == oracle(data)


def test_odd_inputs_differ_where_expected():
    # the cases above say something: the body is not read, CR ends lines, a continuation joins its header
    assert ours(CASES["body without blank line"]) == {"name": ["foo"], "version": ["1"]}
    assert ours(CASES["cr only"])["requires-dist"] == ["a"]
    assert ours(CASES["continuation"])["license"] == ["Apache 2.0 with the LLVM exception"]
    assert ours(CASES["not utf-8"])["summary"] == ["caf\u00e9"]  # Latin-1, as packaging reads it


PIECES = [
    b"Name: foo",
    b"name: Bar",
    b"Version: 1.0",
    b"VERSION:2",
    b"Requires-Dist: numpy>=1.26; python_version >= '3.9'",
    b"Requires-Dist: a",
    b"Requires-Python: >=3.9",
    b"Summary: caf\xc3\xa9",
    b"Summary: caf\xe9",
    b"License: MIT",
    b"X-Custom: y",
    b" continued",
    b"\tcontinued",
    b"   ",
    b"From somebody",
    b": nameless",
    b"no colon here",
    b"Bad Name: v",
    b"",
    b"Name:\xff",
    b"Requires-Dist:",
    b"Ver\x00sion: 9",
]
ENDS = [b"\n", b"\r\n", b"\r"]


def test_random_documents_agree_with_packaging():
    rng = random.Random(16)
    for _ in range(2000):
        lines = [rng.choice(PIECES) for _ in range(rng.randint(0, 9))]
        data = b"".join(line + rng.choice(ENDS) for line in lines)
        assert ours(data) == oracle(data), data


def test_lines_that_are_no_headers_leave_nothing_behind():
    # every header the reader returns, not only the fields the probes read: an mbox "From " line (with or
    # without a colon further on), a nameless ":" line and the continuations after them are dropped
    data = b"From nobody\n cont\nName: foo\n: nameless\n more\nFrom x: y\nVersion: 1\nX-Odd: a\n b\nQ: 1\n\nBody: no\n"
    assert parse_headers(data) == {"name": ["foo"], "version": ["1"], "x-odd": ["a b"], "q": ["1"]}


@pytest.mark.parametrize("extra", [0, 1])
def test_a_header_cut_by_the_cap_is_dropped(extra):
    # the caller reads CAPS["metadata"] bytes: a header line cut there (no line end yet) is not a value
    cap = CAPS["metadata"]
    head = b"Name: foo\nVersion: 1\nRequires-Dist: "
    data = (head + b"p" * cap)[: cap - 1 + extra]  # one byte short of the cap, and exactly at it
    got = parse_headers(data)
    if extra:
        assert got == {"name": ["foo"], "version": ["1"]}
    else:  # under the cap the file is whole: its last line, unterminated, is a header (as packaging reads it)
        assert got["requires-dist"] == ["p" * (cap - 1 - len(head))]
        assert ours(data) == oracle(data)
