"""The typed accessors rules use for the facts they declare in requires=(...) (rules/_common.py)."""

import pytest
from envs import make_env, run_rule

from tfcompat.rules import catalog
from tfcompat.rules._common import RequiredFactMissing, required, required_driver, required_tf


def test_required_returns_the_fact():
    env = make_env("2.21.0", driver="555.42.06")
    assert required_tf(env) is env.tensorflow
    assert required_driver(env) is env.host.driver
    assert required(0, "zero is a value") == 0  # only None is missing


def test_required_raises_on_a_missing_fact():
    env = make_env(None)
    with pytest.raises(RequiredFactMissing, match="tensorflow"):
        required_tf(env)
    with pytest.raises(RequiredFactMissing, match="driver"):
        required_driver(env)


def test_the_engine_skips_before_a_rule_reads_a_missing_fact(matrix):
    # TFC201 requires tensorflow and driver: with no driver it is skipped, never run into RequiredFactMissing
    findings, skips = run_rule(make_env("2.21.0"), matrix, "TFC201")
    assert findings == [] and len(skips) == 1 and "driver unknown" in skips[0].reason


def test_a_rule_called_without_its_fact_names_it(matrix):
    # called directly (not through the engine), a rule that reads a missing required fact says which
    tfc201 = next(r for r in catalog() if r.id == "TFC201")
    with pytest.raises(RequiredFactMissing, match="driver"):
        list(tfc201.func(make_env("2.21.0"), matrix))
