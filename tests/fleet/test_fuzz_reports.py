"""A short run of scripts/fuzz_reports.py in the suite: a few hundred seeded mutations of a real and a synthetic
report and snapshot through the gate and `check --from`; only one unreadable report / SnapshotError may come out."""

import functools
import importlib.util
import os
import random

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts", "fuzz_reports.py"
)


def _load():
    spec = importlib.util.spec_from_file_location("fuzz_reports", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=1)
def _short_run():
    return _load().run(300, seed=17, out=None)


def test_short_fuzz_run_gives_a_verdict_or_the_documented_error():
    result = _short_run()
    assert result["failures"] == 0, result["examples"]
    assert result["cases"] == 300
    assert result["outcomes"].get("gate: judged", 0) >= 30  # not only unreadable inputs
    assert result["outcomes"].get("check --from: judged", 0) >= 30


def test_check_from_deep_or_long_number_snapshot_is_a_snapshot_error():
    assert _short_run()["known_failures"] == 0


def test_mutator_is_deterministic():
    fz = _load()
    seed = {"a": [1, "x", {"b": None}], "environment": {"host": {"node_name": "n1"}, "created": "2026-01-01"}}
    a = [fz.to_text(fz.mutate_tree(seed, random.Random(5)), random.Random(6)) for _ in range(3)]
    b = [fz.to_text(fz.mutate_tree(seed, random.Random(5)), random.Random(6)) for _ in range(3)]
    assert a == b
