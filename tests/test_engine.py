from envs import make_env

from tfcompat import engine
from tfcompat.model import Severity


def test_a_crashing_rule_is_reported_and_the_others_still_run(matrix, monkeypatch):
    def broken(env, matrix):
        raise KeyError("boom")
        yield  # pragma: no cover

    engine.all_rules()  # register every family before copying the registry
    rules = dict(engine.RULES)
    rules["TFC999"] = engine.Rule("TFC999", "broken-rule", Severity.ERROR, (), "Broken.", broken)
    monkeypatch.setattr(engine, "RULES", rules)
    report = engine.evaluate(make_env("2.15.1", packages={"numpy": "2.1.3"}), matrix)
    assert report.exit_code == 2 and report.status == "error"
    assert report.errors == ("rule TFC999 broken-rule failed: KeyError: 'boom' (a tfcompat bug; please report it)",)
    assert [f.rule for f in report.findings] == ["TFC105"]


def test_select_and_ignore_by_prefix(matrix):
    env = make_env("2.15.1", packages={"numpy": "2.1.3", "protobuf": "5.27.0"})
    report = engine.evaluate(env, matrix, select=["TFC10"])
    assert {f.rule for f in report.findings} == {"TFC103", "TFC105"}
    assert all(s.rule.startswith("TFC10") for s in report.skipped)
    report = engine.evaluate(env, matrix, ignore={"TFC1": ""})
    assert report.exit_code == 0 and all(f.waived == "ignored on the command line" for f in report.findings)


def test_fail_on_threshold(matrix):
    env = make_env("2.21.0", driver="550.54.15")  # TFC201 warning only
    assert engine.evaluate(env, matrix).exit_code == 0
    assert engine.evaluate(env, matrix, fail_on=Severity.WARNING).exit_code == 1


def test_crashing_rule_reason_is_in_the_text(matrix, monkeypatch):
    from tfcompat.render.text import render_text

    def broken(env, matrix):
        raise KeyError("boom")
        yield  # pragma: no cover

    engine.all_rules()
    rules = dict(engine.RULES)
    rules["TFC999"] = engine.Rule("TFC999", "broken-rule", Severity.ERROR, (), "Broken.", broken)
    monkeypatch.setattr(engine, "RULES", rules)
    text = render_text(engine.evaluate(make_env("2.21.0"), matrix))
    assert "error: rule TFC999 broken-rule failed: KeyError: 'boom'" in text and "UNDECIDED" in text
