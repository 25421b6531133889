"""The parsed-matrix cache: same Matrix as a fresh parse, never stale, never in the way."""

import json

import pytest

from tfcompat.matrix import cache, load_matrix, parse_matrix
from tfcompat.matrix.fields import default_matrix_path


@pytest.fixture
def cache_at(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv("TFCOMPAT_CACHE_DIR", str(where))
    monkeypatch.delenv("TFCOMPAT_NO_CACHE", raising=False)
    return where


def shipped_text():
    return default_matrix_path().read_text(encoding="utf-8")


def test_second_load_reads_the_cache_and_gives_the_same_matrix(cache_at, monkeypatch):
    first = load_matrix()
    (entry,) = list(cache_at.glob("matrix-*.json"))
    calls = []
    real = cache._read
    monkeypatch.setattr(cache, "_read", lambda p, k: calls.append(p) or real(p, k))
    second = load_matrix()
    assert calls == [entry]
    assert second == first  # frozen dataclasses: equal field by field


def test_an_edited_matrix_is_never_read_stale(cache_at):
    text = shipped_text()
    parse_matrix(text)
    edited = text.replace('cuda = "11.0"', 'cuda = "11.1"', 1)
    assert edited != text
    assert parse_matrix(edited) != parse_matrix(text)  # the edit is seen, not the cached parse of the original
    assert len(list(cache_at.glob("matrix-*.json"))) == 2  # one per content


def test_a_corrupt_or_foreign_cache_file_is_ignored_and_replaced(cache_at):
    text = shipped_text()
    good = parse_matrix(text)
    (entry,) = list(cache_at.glob("matrix-*.json"))
    header, body = entry.read_bytes().split(b"\n", 1)
    entry.write_bytes(header + b"\n" + body.replace(b"cuda", b"CUDA", 1))  # body no longer matches its digest
    assert parse_matrix(text) == good
    entry.write_bytes(b"\x00garbage")
    assert parse_matrix(text) == good
    assert json.loads(entry.read_bytes().split(b"\n", 1)[0])["key"]  # rewritten whole


def test_unwritable_cache_dir_and_no_cache_still_load(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TFCOMPAT_CACHE_DIR", str(blocker / "cache"))
    assert load_matrix().updated
    monkeypatch.setenv("TFCOMPAT_NO_CACHE", "1")
    assert cache.cache_dir() is None
    assert load_matrix().updated


def test_bad_toml_is_still_a_one_line_error_and_caches_nothing(cache_at):
    from tfcompat.matrix import MatrixError

    with pytest.raises(MatrixError, match="not valid TOML"):
        parse_matrix("[meta\n", "bad.toml")
    assert not cache_at.exists() or not list(cache_at.glob("matrix-*.json"))


def test_what_json_cannot_keep_exactly_is_parsed_every_time(cache_at):
    """A TOML date (or time) would come back from JSON as a string: such a document is never cached."""
    import datetime

    calls = []

    def parse(text):
        calls.append(text)
        return {"meta": {"updated": datetime.date(2026, 12, 7)}}

    assert cache.parsed("x", parse) == cache.parsed("x", parse) == {"meta": {"updated": datetime.date(2026, 12, 7)}}
    assert len(calls) == 2 and not list(cache_at.glob("matrix-*.json"))
    plain = []
    cache.parsed("y", lambda t: plain.append(t) or {"a": [1, 2.5, "x", True]})
    assert cache.parsed("y", lambda t: plain.append(t) or {}) == {"a": [1, 2.5, "x", True]}
    assert plain == ["y"]  # the second call came from the cache


def test_cache_keeps_a_bounded_number_of_files(cache_at):
    text = shipped_text()
    for i in range(cache.KEEP + 3):
        parse_matrix(text + f"\n# variant {i}\n")
    assert len(list(cache_at.glob("matrix-*.json"))) == cache.KEEP


def test_a_python_without_its_own_blake2_still_loads_and_caches(cache_at, monkeypatch):
    # hashlib takes BLAKE2 from _blake2 alone (never OpenSSL's): a Python built without it has no
    # hashlib.blake2b either, and the cache must still only save time
    import hashlib
    import sys

    monkeypatch.setitem(sys.modules, "_blake2", None)
    monkeypatch.delattr(hashlib, "blake2b", raising=False)
    text = shipped_text()
    first = parse_matrix(text)
    assert parse_matrix(text) == first
    assert len(list(cache_at.glob("matrix-*.json"))) == 1
