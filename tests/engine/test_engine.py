import ast
from pathlib import Path

import pytest
from envs import make_env

from tfcompat import engine
from tfcompat.errors import TfcompatError
from tfcompat.model import Severity
from tfcompat.rules import catalog


def test_a_crashing_rule_is_reported_and_the_others_still_run(matrix):
    def broken(env, matrix):
        raise KeyError("boom")
        yield  # pragma: no cover

    rules = [*catalog(), engine.Rule("TFC999", "broken-rule", Severity.ERROR, (), "Broken.", broken)]
    report = engine.evaluate(make_env("2.15.1", packages={"numpy": "2.1.3"}), matrix, rules)
    assert report.exit_code == 2 and report.status == "error"
    assert report.errors == ("rule TFC999 broken-rule failed: KeyError: 'boom' (a tfcompat bug; please report it)",)
    assert [f.rule for f in report.findings] == ["TFC105"]


def test_select_and_ignore_by_prefix(matrix):
    env = make_env("2.15.1", packages={"numpy": "2.1.3", "protobuf": "5.27.0"})
    report = engine.evaluate(env, matrix, catalog(), select=["TFC10"])
    assert {f.rule for f in report.findings} == {"TFC103", "TFC105"}
    assert all(s.rule.startswith("TFC10") for s in report.skipped)
    report = engine.evaluate(env, matrix, catalog(), ignore={"TFC1": ""})
    assert report.exit_code == 0 and all(f.waived == "ignored on the command line" for f in report.findings)


def test_fail_on_threshold(matrix):
    env = make_env("2.21.0", driver="550.54.15")  # TFC201 warning only
    assert engine.evaluate(env, matrix, catalog()).exit_code == 0
    assert engine.evaluate(env, matrix, catalog(), fail_on=Severity.WARNING).exit_code == 1


def test_crashing_rule_reason_is_in_the_text(matrix):
    from tfcompat.render.text import render_text

    def broken(env, matrix):
        raise KeyError("boom")
        yield  # pragma: no cover

    rules = [*catalog(), engine.Rule("TFC999", "broken-rule", Severity.ERROR, (), "Broken.", broken)]
    text = render_text(engine.evaluate(make_env("2.21.0"), matrix, rules))
    assert "error: rule TFC999 broken-rule failed: KeyError: 'boom'" in text and "UNDECIDED" in text


def test_the_rules_package_evaluates_with_the_whole_catalogue(matrix):
    from tfcompat import rules

    env = make_env("2.15.1", packages={"numpy": "2.1.3"})
    assert rules.evaluate(env, matrix) == engine.evaluate(env, matrix, catalog())
    assert rules.find("tfc301") is engine.lookup("gpu-library-missing", catalog())


def test_evaluate_runs_only_the_rules_it_is_given(matrix):
    env = make_env("2.15.1", packages={"numpy": "2.1.3"})
    only = [r for r in catalog() if r.id == "TFC105"]
    assert [f.rule for f in engine.evaluate(env, matrix, only).findings] == ["TFC105"]


def test_parse_select_splits_commas_and_checks_every_prefix():
    assert engine.parse_select(["TFC1", " TFC301 ,TFC302,", "gpu-library-missing"], catalog()) == [
        "TFC1",
        "TFC301",
        "TFC302",
        "gpu-library-missing",
    ]
    assert engine.parse_select(None, catalog()) == [] and engine.parse_select(["tfc3"], catalog()) == ["tfc3"]
    with pytest.raises(engine.SelectionError) as err:
        engine.parse_select(["TFC1,TFC9"], catalog())
    assert str(err.value) == (
        "--select TFC9: no rule id starts with it and no rule has that name (see `tfcompat rules`)"
    )
    assert isinstance(err.value, TfcompatError)


def test_parse_ignores_reasons_apply_to_every_prefix_before_them():
    assert engine.parse_ignores(["TFC201", "TFC105,TFC301= CPU image "], catalog()) == {
        "TFC201": "",
        "TFC105": "CPU image",
        "TFC301": "CPU image",
    }
    assert engine.parse_ignores(None, catalog()) == {}
    with pytest.raises(engine.SelectionError, match=r"^--ignore 'TFC1,,TFC2': expected RULE-PREFIX"):
        engine.parse_ignores(["TFC1,,TFC2"], catalog())
    with pytest.raises(engine.SelectionError, match=r"^--ignore TFC999: no rule id starts with it"):
        engine.parse_ignores(["TFC999=typo"], catalog())


def test_selection_checks_against_the_rules_it_is_given():
    only = [r for r in catalog() if r.id == "TFC105"]
    assert engine.parse_select(["TFC105"], only) == ["TFC105"]
    with pytest.raises(engine.SelectionError):
        engine.parse_select(["TFC301"], only)


# -- layering: no import circle between the engine, the rules and the matrix ---------------------------

SRC = Path(__file__).resolve().parents[2] / "src"
LAYERS = ("tfcompat.engine", "tfcompat.rules", "tfcompat.matrix")


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "tfcompat").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every tfcompat module `name` imports, at module level or inside functions (not under
    `if TYPE_CHECKING:`, which never runs), with the parent packages each import runs first."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if _type_checking_only(node):
            todo.extend(getattr(node, "orelse", []))
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules)
        todo.extend(ast.iter_child_nodes(node))
    out = set()
    for mod in found:
        parts = mod.split(".")
        out.update(".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in modules)
    return out


def _layer(name: str) -> str:
    return next((layer for layer in LAYERS if name == layer or name.startswith(layer + ".")), name)


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _layer_graph() -> dict[str, set[str]]:
    """Modules as nodes, each of the three layers folded into one node."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph.setdefault(_layer(name), set()).update(_layer(m) for m in _imports(name, path, modules))
    for node, edges in graph.items():
        edges.discard(node)
    return graph


def test_the_engine_imports_nothing_of_the_rules():
    reached = _reach(_layer_graph(), "tfcompat.engine")
    assert "tfcompat.rules" not in reached, "tfcompat.engine reaches tfcompat.rules through its imports"


def test_no_import_circle_between_engine_rules_and_matrix():
    graph = _layer_graph()
    for layer in LAYERS:
        assert layer not in _reach(graph, layer), f"{layer} imports itself back through " + ", ".join(
            sorted(n for n in _reach(graph, layer) if layer in _reach(graph, n))
        )
