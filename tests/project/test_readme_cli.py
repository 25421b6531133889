"""README.md against the real CLI, so that it stays true for a newcomer: every `tfcompat ...` command line it
shows parses (the command exists, and so do its options and choices), every `--option` it names exists (in
tfcompat, in a script under scripts/, or in the other tool it is shown with), the option tables of `check` and
`gate` list every option of those commands, and the console blocks that run on files shipped in the repository
(the matrix, examples/fleet) show the real output, with `...` standing for lines or text left out.

The gate block of "Try it on the example fleet" is checked exactly by tests/project/test_examples.py."""

import os
import re
import shlex

import pytest
import typer

from tfcompat.cli import app, main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = f"{ROOT}/README.md"
COMMAND = typer.main.get_command(app)
PUNCT = set("();<>|&")
# Options of other tools that the README shows next to tfcompat's (README flag -> the tool).
EXTERNAL = {
    "--no-deps": "pip install --no-deps",
    "--ntasks-per-node": "srun",
    "--gpus-per-node": "sbatch / srun",
    "--exclusive": "srun",
    "--label": "srun --label",
    "--time": "srun --time",
    "--shm-size": "docker run --shm-size",
    "--ulimit": "docker run --ulimit",
    "--check": "ruff format --check",
    "--f": "the completion example `tfcompat check --f<TAB>`",
}
# Console blocks run here: their commands read only what the repository ships. Not the one test_examples checks.
RUNNABLE = re.compile(
    r"^tfcompat (matrix (?!validate|what-runs --from)|gate examples/fleet .*--pool|check --from examples/)"
)


def readme():
    with open(README, encoding="utf-8") as fh:
        return fh.read()


def fenced_blocks(text):
    """(info string, body) of every fenced code block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)


def prose(text):
    """The text outside fenced blocks and outside ``double-backtick`` spans (which quote messages)."""
    text = re.sub(r"^```\w*\n.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"``.+?``", "", text, flags=re.S)


def command_lines(text):
    """Shell lines the README shows: `$ ` lines of console blocks, lines of sh blocks, inline `tfcompat ...` spans."""
    lines = []
    for info, body in fenced_blocks(text):
        for line in body.splitlines():
            if info == "console" and line.startswith("$ "):
                lines.append(line[2:])
            elif info in ("sh", "bash") and line.strip() and not line.lstrip().startswith("#"):
                lines.append(line)
    for span in re.findall(r"`([^`]+)`", prose(text)):
        span = span.replace("\n", " ")
        if re.match(r"(?:[\w./-]*/)?tfcompat\s", span):
            lines.append(span)
    return lines


def tokens_of(line):
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


def invocations(line):
    """The argument lists of every tfcompat command in a shell line (pipes, `&&`, quoted `-a '...'` included)."""
    out, segment = [], []
    for tok in [*tokens_of(line), ";"]:
        if set(tok) <= PUNCT:
            starts = [i for i, t in enumerate(segment) if t == "tfcompat" or t.endswith("/tfcompat")]
            if starts:
                out.append(segment[starts[0] + 1 :])
            segment = []
        elif re.match(r"tfcompat\s", tok):  # a whole command line as one argument (ansible -a '...')
            out.extend(invocations(tok))
        else:
            segment.append(tok)
    return out


def parse(args, where):
    """Parse `tfcompat ARGS` the way the CLI would, without running it; `fleet ... -- CHECK_ARGS` as check's."""
    cmd, name = COMMAND, "tfcompat"
    while hasattr(cmd, "commands"):
        if not args or args[0] in ("-h", "--help", "--version"):
            return
        if args[0] not in cmd.commands:
            pytest.fail(f"{where}: `{name} {args[0]}` is not a command")
        name, cmd, args = f"{name} {args[0]}", cmd.commands[args[0]], args[1:]
    if not args or "-h" in args or "--help" in args:
        return  # a mention of the command (`tfcompat explain`), or its help
    try:
        cmd.make_context(name, list(args))
    except Exception as exc:  # noqa: BLE001 - click's usage errors, of several classes
        # a placeholder (`completion SHELL`) is not a value; the error must be about it;
        # and an option named at the end of a sentence (`tfcompat check --python` in a table's header) is a mention
        mention = args[-1].startswith("--") and "requires an argument" in str(exc)
        if not mention and not any(re.fullmatch(r"[A-Z][A-Z_]+", a) and f"'{a}'" in str(exc) for a in args):
            pytest.fail(f"{where}: `{name} {shlex.join(args)}` does not parse: {exc}")
    if name == "tfcompat fleet" and "--" in args:
        parse(["check", *args[args.index("--") + 1 :]], where)


def options_of(cmd):
    out = set()
    for p in cmd.params:
        out |= {o for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}
    return out


def all_options(cmd=COMMAND):
    out = options_of(cmd) | {"-h", "--help"}
    for sub in getattr(cmd, "commands", {}).values():
        out |= all_options(sub)
    return out


def script_options():
    import glob

    out = set()
    for path in glob.glob(f"{ROOT}/scripts/*.py") + glob.glob(f"{ROOT}/scripts/*.sh"):
        with open(path, encoding="utf-8") as fh:
            out |= set(re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", fh.read()))
    return out


def test_every_tfcompat_command_line_parses():
    lines = [line for line in command_lines(readme()) if "..." not in line and "…" not in line and "<TAB>" not in line]
    checked = 0
    for line in lines:
        for args in invocations(line):
            parse(args, f"README: {line!r}")
            checked += 1
    assert checked >= 60, checked  # the extraction finds the README's command lines


def test_the_extraction_sees_pipes_quotes_and_fleet_arguments():
    assert invocations(
        "clush -w 'gpu-[001-128]' tfcompat check -f jsonl | tfcompat gate - --expect 'gpu-[001-128]'"
    ) == [
        ["check", "-f", "jsonl"],
        ["gate", "-", "--expect", "gpu-[001-128]"],
    ]
    assert invocations("ansible gpu -m command -a 'tfcompat check -f jsonl' | x") == [["check", "-f", "jsonl"]]
    with pytest.raises(pytest.fail.Exception):
        parse(["fleet", "--local", "2", "--", "--no-such-option"], "self-test")
    with pytest.raises(pytest.fail.Exception):
        parse(["matrix", "no-such-command"], "self-test")


def test_every_option_the_readme_names_exists():
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", re.sub(r"https?://\S+", "", readme())))
    unknown = sorted(named - all_options() - script_options() - set(EXTERNAL))
    assert not unknown, f"README names options no tfcompat command or script has: {unknown}"
    unused = sorted(set(EXTERNAL) - named)
    assert not unused, f"EXTERNAL lists options the README no longer names: {unused}"


def table_after(text, heading):
    """The first Markdown table after `heading`, as text."""
    rest = text[text.index(heading) :]
    start = rest.index("\n|")
    end = rest.find("\n\n", start)
    return rest[start:end]


@pytest.mark.parametrize(
    ("command", "tables"),
    [
        ("check", ["## Options of `tfcompat check`", "### What to point it at"]),
        ("gate", ["**Inputs.**"]),
    ],
)
def test_option_tables_list_every_option(command, tables):
    text = readme()
    listed = set()
    for heading in tables:
        listed |= set(re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*", table_after(text, heading)))
    missing = sorted(options_of(COMMAND.commands[command]) - listed)
    assert not missing, f"README's table of `tfcompat {command}` lacks {missing} (see `tfcompat {command} --help`)"


# --------------------------------------------------------------------------- console blocks with real output


def matches(expected, actual):
    """`expected` lines (a line `...` = any lines; `...` inside a line = any text) against `actual`."""
    pats = [
        None if e.strip() in ("...", "…") else re.compile(".*".join(map(re.escape, e.split("...")))) for e in expected
    ]
    memo = {}

    def go(i, j):
        if (i, j) not in memo:
            if i == len(pats):
                memo[i, j] = j == len(actual)
            elif pats[i] is None:
                memo[i, j] = any(go(i + 1, k) for k in range(j, len(actual) + 1))
            else:
                memo[i, j] = j < len(actual) and pats[i].fullmatch(actual[j]) is not None and go(i + 1, j + 1)
        return memo[i, j]

    return go(0, 0)


def console_steps():
    """(command, expected output lines) of the console blocks' commands that run on shipped files (and the
    `grep` of a file such a command wrote)."""
    for info, body in fenced_blocks(readme()):
        if info != "console":
            continue
        steps = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        previous = False
        for command, out in steps:
            while out and not out[-1]:
                out.pop()
            previous = bool(RUNNABLE.match(command)) or (previous and command.startswith("grep "))
            if previous:
                yield command, out


def run_step(command, capsys, tmp_path, state):
    """A tiny shell for the README's forms: `tfcompat ARGS [-o FILE] [; echo $?] [| head -N] [| jq -r .KEY]`,
    `grep -E RE FILE [| head -N]`; files named by -o live in tmp_path."""
    parts, cur = [], []
    for tok in tokens_of(command):
        if tok in ("|", ";"):
            parts.append((tok, cur))
            cur = []
        else:
            cur.append(tok)
    parts.append((None, cur))
    (_, first), rest = parts[0], parts[1:]
    if first[0] == "tfcompat":
        args = [
            state.setdefault(a, str(tmp_path / a.rsplit("/", 1)[-1])) if prev == "-o" else a
            for prev, a in zip(["", *first[1:]], first[1:])
        ]
        with pytest.raises(SystemExit) as exc:
            main(args)
        out, err = capsys.readouterr()
        lines, code = (out + err).splitlines(), exc.value.code
    elif first[:2] == ["grep", "-E"]:
        with open(state[first[3]], encoding="utf-8") as fh:
            lines, code = [x for x in fh.read().splitlines() if re.search(first[2], x)], 0
    else:
        raise AssertionError(f"README console step not understood: {command!r}")
    for sep, cmd in [(p[0], q[1]) for p, q in zip(parts, rest)]:
        if sep == ";" and cmd == ["echo", "$?"]:
            lines.append(str(code))
        elif sep == "|" and cmd[0] == "head":
            lines = lines[: int(cmd[1].lstrip("-"))]
        elif sep == "|" and cmd[:2] == ["jq", "-r"]:
            import json

            lines = [str(json.loads("\n".join(lines))[cmd[2].lstrip(".")])]
        else:
            raise AssertionError(f"README console step not understood: {command!r}")
    return lines


def test_console_blocks_on_shipped_files_show_the_real_output(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    steps, state, wrong = list(console_steps()), {}, []
    assert len(steps) >= 12, [c for c, _ in steps]  # the matrix blocks, the pools, the dashboards
    for command, expected in steps:
        actual = run_step(command, capsys, tmp_path, state)
        if not matches(expected, actual):
            wrong.append(f"$ {command}\n--- README\n" + "\n".join(expected) + "\n--- real\n" + "\n".join(actual))
    assert not wrong, "README console output differs from the real output:\n\n" + "\n\n".join(wrong)


def test_elision_matching():
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"]) and matches(["a", "  ...", "b"], ["a", "b"])
    assert matches(["x .../m.toml y"], ["x /r/data/m.toml y"])
    assert not matches(["a", "d"], ["a", "b", "d"]) and not matches(["a", "..."], ["b"])


def test_matrix_validate_names_the_entry_the_readme_shows(capsys, tmp_path):
    """The README's broken.toml: the matrix with one letter O in CUDA 12.5.1's min_driver."""
    with open(f"{ROOT}/data/compat_matrix.toml", encoding="utf-8") as fh:
        text = fh.read()
    at = text.index('min_driver = "555.42.06"', text.index('[[cuda]]\nversion = "12.5.1"'))
    broken = tmp_path / "broken.toml"
    broken.write_text(text[:at] + 'min_driver = "555.42.O6"' + text[at + len('min_driver = "555.42.06"') :])
    with pytest.raises(SystemExit) as exc:
        main(["matrix", "validate", str(broken)])
    err = capsys.readouterr().err.replace(str(broken), "broken.toml")
    block = readme().split("$ tfcompat matrix validate broken.toml\n", 1)[1].split("```", 1)[0]
    assert exc.value.code == 2 and block.startswith(err), (err, block)


def test_the_site_overlay_example_is_a_valid_overlay(capsys, tmp_path):
    text = readme()
    body = text[text.index("### Site overlay") :].split("```toml\n", 1)[1].split("```", 1)[0]
    site = tmp_path / "site.toml"
    site.write_text(body)
    with pytest.raises(SystemExit) as exc:
        main(["matrix", "validate", str(site)])
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and "valid overlay (1 known_bad_driver, 1 waiver, 1 thresholds)" in out, out + err
