"""The README's rule tables and the rule registry (`tfcompat rules`) agree (issue #12, Deliver 3): every
registered rule has a table row with its name and default severity, and the README names no rule that does
not exist."""

import json
import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")
RULE_ID = re.compile(r"\bTFC\d{3}\b")
# Known README gaps at the restructuring (README.md is the lead's to edit): reported as xfail, not hidden.
# Delete an entry once the README has the row; the test is strict for every other rule.
KNOWN_GAPS: dict = {}  # rule id -> why the README lacks it (none today)


def registry():
    out = subprocess.run(
        [sys.executable, "-m", "tfcompat", "rules", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {r["rule"]: r for r in json.loads(out)}


def readme_rows():
    """{rule id: {column: cell}} for every table row whose first cell names rule ids ("TFC606 / TFC607")."""
    with open(README, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    rows, header = {}, None
    for line in lines:
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(line) <= set("|-: "):
            continue
        ids = RULE_ID.findall(cells[0])
        if not ids or RULE_ID.sub("", cells[0]).strip(" /,") != "":
            continue
        names = [n.strip() for n in cells[header.index("name")].split("/")] if "name" in header else None
        for i, rid in enumerate(ids):
            row = dict(zip(header, cells))
            if names is not None:
                row["name"] = names[i] if len(names) == len(ids) else row["name"]
            rows[rid] = row
    return rows


def readme_ids():
    with open(README, encoding="utf-8") as fh:
        return set(RULE_ID.findall(fh.read()))


def _fleet_not_registered(rules, ids):
    """TFC6xx (fleet drift) are documented but, before the restructuring, live outside the registry."""
    return ids and all(i.startswith("TFC6") for i in ids) and not any(r.startswith("TFC6") for r in rules)


def test_every_rule_has_a_row_with_its_name_and_severity():
    rules, rows = registry(), readme_rows()
    problems = []
    for rid, rule in sorted(rules.items()):
        row = rows.get(rid)
        if row is None:
            problems.append(f"{rid} {rule['name']}: no row in a README rule table")
            continue
        if "name" in row and row["name"] != rule["name"]:
            problems.append(f"{rid}: README name {row['name']!r}, registry {rule['name']!r}")
        if "severity" in row:
            first = re.search(r"error|warning|info", row["severity"])
            if first is None or first.group(0) != rule["severity"]:
                problems.append(f"{rid}: README severity {row['severity']!r}, registry default {rule['severity']!r}")
    unexplained = [p for p in problems if p.split()[0].rstrip(":") not in KNOWN_GAPS]
    assert not unexplained, "\n".join(unexplained)
    if problems:
        pytest.xfail("known README gaps: " + "; ".join(problems))


def test_readme_names_no_rule_that_does_not_exist():
    rules = registry()
    unknown = sorted(readme_ids() - set(rules))
    if _fleet_not_registered(rules, unknown):
        pytest.xfail(f"fleet drift rules {', '.join(unknown)} are documented but not registered yet")
    assert not unknown, f"README names rules the registry does not have: {', '.join(unknown)}"


def test_the_parser_reads_the_tables():
    rows = readme_rows()
    assert rows["TFC201"]["name"] == "driver-too-old-for-cuda"
    assert rows["TFC201"]["severity"].startswith("error")
    assert {"TFC606", "TFC607", "TFC608", "TFC609"} <= set(rows)  # "TFC606 / TFC607 / ..." rows are split
    assert len(rows) >= 50
