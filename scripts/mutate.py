#!/usr/bin/env python3
"""A small mutation run over the rules: flip one comparison, drop one branch, shift one constant, and see
whether the tests notice.

Why self-written: mutmut 3 rewrites the tree in place with trampolines and wants its own set-up, cosmic-ray
wants a session database; this is ~200 lines, needs nothing but the standard library and pytest, and each
mutant runs in a scratch copy of src/ and data/, so the working tree is never touched.

    python scripts/mutate.py                       # every mutant of src/tfcompat/rules/
    python scripts/mutate.py --limit 60 --seed 1   # a random sample
    python scripts/mutate.py --list                # only show the mutants
    python scripts/mutate.py src/tfcompat/rules/driver.py --json out.json
    python scripts/mutate.py src/tfcompat/fleet/pools.py --tests tests/fleet/test_pools.py

For each mutant it runs the tests that name one of the module's rule ids (TFCnnn) or import the module, with
`pytest -x` and a time limit; a mutant is killed when they fail, survives when they pass, and a timeout counts
as killed (the mutant made something loop). Survivors are printed with file, line and the change.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLIP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to ROOT
    line: int
    kind: str  # flip, drop-if, and-or, not, const
    change: str
    index: int  # the n-th candidate node of this kind in the file (ast.walk order)


def _docstring_nodes(tree: ast.AST) -> set:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _candidates(tree: ast.AST) -> Iterator[tuple]:
    """(kind, node, change) for every place a mutant can be made, in a stable order."""
    docs = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in FLIP:
                    yield "flip", (node, i), f"{SYMBOL[type(op)]} -> {SYMBOL[FLIP[type(op)]]}"
        elif isinstance(node, ast.If):
            yield "drop-if", node, "if <test>: -> if False:"
        elif isinstance(node, ast.BoolOp):
            yield "and-or", node, "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield "not", node, "not x -> x"
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and id(node) not in docs
            and not isinstance(node.value, bool)
        ):
            yield "const", node, f"{node.value} -> {node.value + 1}"


def find_mutants(path: str) -> list[Mutant]:
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    out = []
    for n, (kind, node, change) in enumerate(_candidates(tree)):
        line = node[0].lineno if isinstance(node, tuple) else node.lineno
        out.append(Mutant(path, line, kind, change, n))
    return out


class _Apply(ast.NodeTransformer):
    def __init__(self, target: int):
        self.target = target

    def apply(self, tree: ast.AST) -> ast.AST:
        for n, (kind, node, _) in enumerate(_candidates(tree)):
            if n != self.target:
                continue
            if kind == "flip":
                cmp, i = node
                cmp.ops[i] = FLIP[type(cmp.ops[i])]()
            elif kind == "drop-if":
                node.test = ast.Constant(False)
            elif kind == "and-or":
                node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            elif kind == "not":
                return _replace(tree, node, node.operand)
            elif kind == "const":
                node.value = node.value + 1
            return tree
        raise IndexError(self.target)


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> ast.AST:
    class R(ast.NodeTransformer):
        def visit(self, node):
            return new if node is old else self.generic_visit(node)

    return R().visit(tree)


def mutated_source(m: Mutant) -> str:
    with open(os.path.join(ROOT, m.path), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    return ast.unparse(ast.fix_missing_locations(_Apply(m.index).apply(tree)))


# Test files fast enough to run per mutant; the CLI, gate, Dask and deploy tests start many subprocesses.
FAST_TESTS = r"^test_(rules_|resources|rocm|engine|custom_op|verdict|nvml|text_report|readme|log_patterns)"


def tests_for(path: str, match: str = FAST_TESTS) -> list[str]:
    """Fast test files that name one of the module's rule ids or import it."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        ids = set(re.findall(r'@rule\(\s*"(TFC\d+)"', fh.read()))
    module = path[len("src/") : -len(".py")].replace("/", ".")
    out = []
    tests = os.path.join(ROOT, "tests")
    for dirpath, _, files in os.walk(tests):
        for f in sorted(files):
            if not (re.search(match, f) and f.endswith(".py")) or f.startswith("test_realwheel"):
                continue
            full = os.path.join(dirpath, f)
            with open(full, encoding="utf-8") as fh:
                text = fh.read()
            # a shared helper module (no rule of its own, e.g. _common.py) is guarded by every fast test
            if not ids or module in text or any(re.search(rf"\b{i}\b", text) for i in ids):
                out.append(os.path.relpath(full, ROOT))
    return sorted(out)


def run_mutant(m: Mutant, scratch: str, tests: list[str], timeout: float) -> str:
    target = os.path.join(scratch, m.path)
    with open(target, encoding="utf-8") as fh:
        original = fh.read()
    try:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(mutated_source(m))
        env = dict(os.environ, PYTHONPATH=os.path.join(scratch, "src"), PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not realwheel", *tests]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout"
        if proc.returncode == 0:
            return "survived"
        if proc.returncode in (1, 2):  # failed tests, or an error at collection (the mutant broke an import)
            return "killed"
        return f"error (pytest exit {proc.returncode})"
    finally:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(original)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", help="modules to mutate (default: src/tfcompat/rules/*.py)")
    ap.add_argument("--limit", type=int, help="run a random sample of this many mutants")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--kinds", default="flip,drop-if,and-or,not,const", help="comma-separated mutation kinds")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per mutant (a timeout counts as killed)")
    ap.add_argument("--tests-match", default=FAST_TESTS, help="regex on test file names that may run per mutant")
    ap.add_argument("--tests", nargs="+", help="run exactly these test files per mutant (a module outside rules/)")
    ap.add_argument("--lines", help="only mutants on these lines, e.g. 169-287 (one rule of a big module)")
    ap.add_argument("--list", action="store_true", help="list the mutants and stop")
    ap.add_argument("--json", help="write every result to this file")
    ap.add_argument("--retry", help="run again only the survivors recorded in this --json file (after new tests)")
    args = ap.parse_args(argv)

    paths = args.paths or sorted(
        os.path.relpath(os.path.join(d, f), ROOT)
        for d, _, fs in os.walk(os.path.join(ROOT, "src/tfcompat/rules"))
        for f in fs
        if f.endswith(".py") and f != "__init__.py"
    )
    paths = [os.path.relpath(os.path.abspath(p), ROOT) for p in paths]
    kinds = set(args.kinds.split(","))
    mutants = [m for p in paths for m in find_mutants(p) if m.kind in kinds]
    if args.lines:
        first, _, last = args.lines.partition("-")
        mutants = [m for m in mutants if int(first) <= m.line <= int(last or first)]
    if args.retry:
        with open(args.retry, encoding="utf-8") as fh:
            again = {(r["path"], r["index"]) for r in json.load(fh) if r["outcome"] == "survived"}
        mutants = [m for m in mutants if (m.path, m.index) in again]
    if args.limit is not None and args.limit < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.limit), key=lambda m: (m.path, m.index))
    if args.list:
        for m in mutants:
            print(f"{m.path}:{m.line}: {m.kind}: {m.change}")
        print(f"{len(mutants)} mutants")
        return 0

    scratch = tempfile.mkdtemp(prefix="tfcompat-mutate-")
    try:
        for part in ("src", "data"):
            shutil.copytree(
                os.path.join(ROOT, part), os.path.join(scratch, part), ignore=shutil.ignore_patterns("__pycache__")
            )
        test_map: dict[str, list[str]] = {p: args.tests or tests_for(p, args.tests_match) for p in paths}
        results = []
        start = time.monotonic()
        for n, m in enumerate(mutants, 1):
            tests = test_map[m.path]
            outcome = run_mutant(m, scratch, tests, args.timeout) if tests else "survived"
            results.append((m, outcome))
            print(f"[{n}/{len(mutants)}] {outcome:9} {m.path}:{m.line}: {m.kind}: {m.change}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    survivors = [m for m, o in results if o == "survived"]
    killed = sum(1 for _, o in results if o in ("killed", "timeout"))
    errors = [m for m, o in results if o.startswith("error")]
    print(
        f"\n{len(results)} mutants, {killed} killed, {len(survivors)} survived, {len(errors)} errors "
        f"({time.monotonic() - start:.0f} s)"
    )
    for m in survivors:
        print(f"SURVIVED {m.path}:{m.line}: {m.kind}: {m.change}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([dict(asdict(m), outcome=o) for m, o in results], fh, indent=1)
    return 1 if survivors or errors else 0


if __name__ == "__main__":
    sys.exit(main())
