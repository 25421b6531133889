"""Habits of well-known command lines (issue 16, Deliver 2), and a light start-up (Deliver 3).

-h as well as --help everywhere; -q; `tfcompat completion SHELL`; help placeholders that read as words; colour
decided by --color/--no-color, NO_COLOR (non-empty), FORCE_COLOR, TERM=dumb and the terminal; one warning line
per ignored option; `--version` and `--help` without the matrix, pydantic, the gate or Dask.
"""

import json
import os
import subprocess
import sys

import pytest
import typer
from envs import make_env

import tfcompat
from tfcompat.cli import app, classes, main
from tfcompat.model import to_json_dict
from tfcompat.outputs import colour_wanted

ESC = "\x1b["


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def command_paths(command=None, path=()):
    """Every command and subcommand, as the words that name it: (), ("check",), ("matrix", "gpu"), ..."""
    command = command or typer.main.get_command(app)
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, (*path, name))


PATHS = list(command_paths())


@pytest.fixture
def snapshot(tmp_path):
    """A snapshot with one error finding (TFC103: protobuf too old for TF 2.21), so text output has a label."""
    path = tmp_path / "node-1.json"
    path.write_text(json.dumps(to_json_dict(make_env(packages={"protobuf": "3.20.0"}))))
    return path


@pytest.fixture
def plain_env(monkeypatch):
    """No colour variable from the developer's shell or the CI runner."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ------------------------------------------------------------------------------------------------ -h, --help


def test_every_command_is_listed():
    names = {" ".join(p) for p in PATHS}
    assert {"check", "scan", "gate", "fleet", "completion", "matrix", "matrix what-runs"} <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "tfcompat")
def test_dash_h_is_help_on_every_command(capsys, path):
    code, short, _ = run(capsys, *path, "-h")
    assert code == 0 and short.startswith("Usage: tfcompat")
    assert "-h, --help" in short
    assert (code, short) == run(capsys, *path, "--help")[:2]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "tfcompat")
def test_help_placeholders_read_as_words(capsys, path):
    _, out, _ = run(capsys, *path, "--help")
    for label in ("<str>", "<list[", "<int", "<float", "<path>", " TEXT", " INTEGER", " FLOAT"):
        assert label not in out, f"{' '.join(path)} --help shows {label!r}"


@pytest.mark.parametrize(
    "path, wanted",
    [
        (
            ("check",),
            [
                "--python PATH",
                "--site-packages DIR",
                "--root DIR",
                "--from SNAPSHOT",
                "--matrix FILE",
                "--select PREFIX",
                "--ignore PREFIX[=REASON]",
                "--node-name NAME",
                "--probe-timeout SECONDS",
                "--budget SECONDS",
                "--op FILE",
                "-o, --output FILE",
                "--output-dir DIR",
                "-q, --quiet",
            ],
        ),
        (("scan",), ["--python PATH", "--budget SECONDS", "-o, --output FILE"]),
        (("gate",), ["REPORT...", "--expect NODESET|FILE", "--max-age AGE", "--group-by FIELD", "-q, --quiet"]),
        (("fleet",), ["CHECK_ARGS...", "--scheduler ADDRESS", "--local N", "--timeout SECONDS", "-q, --quiet"]),
        (("explain",), ["RULE "]),
        (("completion",), ["SHELL "]),
        (("matrix", "what-runs"), ["--driver VERSION", "--gpu CC", "--from SNAPSHOT", "--matrix-overlay FILE"]),
    ],
)
def test_help_names_its_placeholders(capsys, path, wanted):
    _, out, _ = run(capsys, *path, "--help")
    for placeholder in wanted:
        assert placeholder in out


# ------------------------------------------------------------------------------------------------ completion


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell", "pwsh"])
def test_completion_prints_the_script_and_installs_nothing(capsys, shell, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = run(capsys, "completion", shell)
    assert code == 0 and err == ""
    assert "_TFCOMPAT_COMPLETE" in out and "tfcompat" in out
    assert list(tmp_path.iterdir()) == []  # no rc file written


def test_completion_refuses_an_unknown_shell(capsys):
    code, _, err = run(capsys, "completion", "tcsh")
    assert code == 2 and "tcsh" in err


def test_the_script_completes_commands_and_options(monkeypatch, capsys):
    """What the bash function `tfcompat completion bash` defines asks: the same environment variables."""
    monkeypatch.setenv("_TFCOMPAT_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "tfcompat ch")
    monkeypatch.setenv("COMP_CWORD", "1")
    code, out, _ = run(capsys)
    assert code == 0 and out.split() == ["check"]
    monkeypatch.setenv("COMP_WORDS", "tfcompat check --probe")
    monkeypatch.setenv("COMP_CWORD", "2")
    code, out, _ = run(capsys)
    assert code == 0 and set(out.split()) == {"--probe", "--probe-timeout"}


# ------------------------------------------------------------------------------------------------ colour

NO_TTY, TTY = False, True


@pytest.mark.parametrize(
    "flag, output, env, tty, wanted",
    [
        # default: a terminal only
        (None, None, {}, TTY, True),
        (None, None, {}, NO_TTY, False),
        # never into an --output file, unless --color says so
        (None, "r.txt", {"FORCE_COLOR": "1"}, TTY, False),
        (True, "r.txt", {}, NO_TTY, True),
        # NO_COLOR: only when set and non-empty (no-color.org)
        (None, None, {"NO_COLOR": "1"}, TTY, False),
        (None, None, {"NO_COLOR": ""}, TTY, True),
        (None, None, {"NO_COLOR": "0"}, TTY, False),  # any non-empty value, even 0
        # FORCE_COLOR: any non-empty value forces it, on a pipe and on a dumb terminal; an empty one is ignored
        (None, None, {"FORCE_COLOR": "1"}, NO_TTY, True),
        (None, None, {"FORCE_COLOR": "0"}, NO_TTY, True),
        (None, None, {"FORCE_COLOR": ""}, NO_TTY, False),
        (None, None, {"FORCE_COLOR": "1", "TERM": "dumb"}, NO_TTY, True),
        # NO_COLOR before FORCE_COLOR (CPython 3.13's order)
        (None, None, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, TTY, False),
        (None, None, {"NO_COLOR": "", "FORCE_COLOR": "1"}, NO_TTY, True),
        # TERM=dumb: no colour on a terminal that cannot show it
        (None, None, {"TERM": "dumb"}, TTY, False),
        (None, None, {"TERM": "xterm-256color"}, TTY, True),
        # --color / --no-color win over everything
        (True, None, {"NO_COLOR": "1", "TERM": "dumb"}, NO_TTY, True),
        (False, None, {"FORCE_COLOR": "1"}, TTY, False),
    ],
)
def test_colour_decision_table(flag, output, env, tty, wanted):
    assert colour_wanted(flag, output, environ=env, tty=tty) is wanted


@pytest.mark.parametrize(
    "env, argv, coloured",
    [
        ({}, [], False),  # capsys: stdout is not a terminal
        ({"FORCE_COLOR": "1"}, [], True),
        ({"FORCE_COLOR": "1"}, ["--no-color"], False),
        ({"NO_COLOR": "1"}, ["--color"], True),
        ({"NO_COLOR": "", "FORCE_COLOR": "1"}, [], True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, [], False),
    ],
)
def test_check_text_colour_follows_the_environment(capsys, plain_env, snapshot, env, argv, coloured):
    for name, value in env.items():
        plain_env.setenv(name, value)
    code, out, _ = run(capsys, "check", "--from", snapshot, *argv)
    assert code == 1 and "TFC103" in out
    assert (ESC in out) is coloured


def test_gate_text_colour_follows_the_environment(capsys, plain_env, snapshot):
    plain_env.setenv("FORCE_COLOR", "yes")
    code, out, _ = run(capsys, "gate", snapshot)
    assert code == 1 and ESC in out
    plain_env.setenv("TERM", "dumb")
    plain_env.delenv("FORCE_COLOR")
    assert ESC not in run(capsys, "gate", snapshot)[1]


# ------------------------------------------------------------------------------------------------ -q


def test_check_quiet_prints_nothing_but_keeps_the_exit_code(capsys, snapshot, tmp_path):
    assert run(capsys, "check", "--from", snapshot, "-q") == (1, "", "")
    report = tmp_path / "report.json"
    code, out, err = run(capsys, "check", "--from", snapshot, "--quiet", "-f", "json", "-o", report)
    assert (code, out, err) == (1, "", "")
    assert json.loads(report.read_text())["exit_code"] == 1  # --output is still written


def test_check_quiet_still_prints_errors(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run(capsys, "check", "--from", bad, "-q", "-f", "json")
    assert code == 2 and out == ""
    assert err.startswith("tfcompat: error: ") and err.count("\n") == 1


def test_check_quiet_drops_the_scope_note_but_not_warnings(capsys, snapshot):
    code, out, err = run(capsys, "check", "--from", snapshot, "-q", "--scope", "node", "--node-name", "x")
    assert (code, out) == (1, "")
    assert (
        err == "tfcompat: warning: --node-name is ignored with --from: it only affects a scan, and the snapshot "
        "is judged as it was recorded\n"
    )


def test_gate_quiet(capsys, snapshot, tmp_path):
    assert run(capsys, "gate", snapshot, "-q") == (1, "", "")
    verdict = tmp_path / "verdict.xml"
    assert run(capsys, "gate", snapshot, "-q", "-f", "junit", "-o", verdict) == (1, "", "")
    assert verdict.read_text().startswith("<?xml")


# ------------------------------------------------------------------------------------------------ ignored options


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--node-name", "gpu-001"], "--node-name"),
        (["--no-nvml"], "--no-nvml"),
        (["--nvml"], "--nvml"),
        (["--op", "libmy_op.so"], "--op"),
        (["--budget", "30"], "--budget"),
        (["--probe-timeout", "30"], "--probe-timeout"),
        (["--color", "-f", "json"], "--color"),
    ],
)
def test_an_ignored_option_is_one_warning_line(capsys, snapshot, argv, option):
    code, out, err = run(capsys, "check", "--from", snapshot, "-f", "text", *argv)
    assert code == 1 and out  # the run goes on
    assert err.count("\n") == 1 and err.startswith(f"tfcompat: warning: {option} is ignored with")


def test_one_line_per_ignored_option_and_none_without(capsys, snapshot):
    argv = ["check", "--from", snapshot, "--node-name", "x", "--no-nvml", "--op", "y", "--probe-timeout", "5"]
    lines = run(capsys, *argv)[2].splitlines()
    assert [line.split()[2] for line in lines] == ["--node-name", "--no-nvml", "--op", "--probe-timeout"]
    assert all(line.startswith("tfcompat: warning: ") for line in lines)
    assert run(capsys, "check", "--from", snapshot, "--no-color", "--scope", "job")[2] == ""
    assert run(capsys, "check", "--from", snapshot, "-f", "npd", "--node-name", "x")[2] == ""  # NPD: its line only


def test_scan_warns_about_probe_timeout_without_probe(capsys, monkeypatch):
    import tfcompat.cli.check as cli_check

    monkeypatch.setattr(cli_check, "scan_environment", lambda *a, **k: make_env())
    code, out, err = run(capsys, "scan", "--probe-timeout", "30")
    assert code == 0 and json.loads(out)["host"]["node_name"] == "node-1"
    assert (
        err
        == "tfcompat: warning: --probe-timeout is ignored without --probe: it is the time limit of the --probe child\n"
    )


def test_gate_warns_about_color_with_json(capsys, snapshot):
    code, out, err = run(capsys, "gate", snapshot, "-f", "json", "--color")
    assert code == 1 and json.loads(out)["status"] == "fail"
    assert err == "tfcompat: warning: --color is ignored with --format json: only text output is coloured\n"


# ------------------------------------------------------------------------------------------------ start-up

HEAVY = ("tfcompat.matrix", "tfcompat.fleet.gate", "tfcompat.probes", "tfcompat.rules", "pydantic", "dask")


def imported(*argv, codes=(0,)):
    """The modules a fresh `python -m tfcompat ARGV` imports (python -X importtime)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("_TFCOMPAT")}
    src = os.path.dirname(os.path.dirname(tfcompat.__file__))  # the tfcompat this test imported
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tfcompat", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode in codes, proc.stderr
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize(
    "argv", [["--version"], ["check", "--help"], ["gate", "-h"], ["matrix", "tensorflow", "-h"], ["--help"]]
)
def test_version_and_help_import_nothing_heavy(argv):
    modules = imported(*argv)
    assert "typer" in modules and "tfcompat.cli" in modules
    heavy = sorted(m for m in modules if m.startswith(HEAVY))
    assert heavy == [], f"tfcompat {' '.join(argv)} imports {heavy}"


def test_a_whole_check_does_not_import_pydantic(snapshot):
    """typer would coerce every option through a pydantic adapter; the plain ones are answered without it."""
    argv = ["check", "--from", snapshot, "-f", "json", "--select", "TFC1", "--fail-on", "warning", "--budget", "30"]
    modules = imported(*argv, codes=(1,))
    assert "tfcompat.rules" in modules and not any(m.startswith("pydantic") for m in modules)


SAMPLES = [None, "x", "", ("a", "b"), (), "json", "JSON", "node", "warning", "5", "0.5", "30", "1e3", "abc", "-1"]


@pytest.mark.skipif(not classes._LEAN, reason="this typer has no pydantic adapters")
@pytest.mark.parametrize("path", [p for p in PATHS if p], ids=" ".join)
def test_lean_coercion_answers_as_typer_does(path):
    from typer._coercion import build_runtime_param

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    ctx = command.make_context("tfcompat", ["--help"], resilient_parsing=True)
    for param in command.get_params(ctx):
        desc = param.type_descriptor
        lean = classes._Lean(parameter_info=desc.parameter_info, annotation=desc.annotation, descriptor=desc)
        for value in [*SAMPLES, param.default]:
            if desc.annotation is bool and isinstance(value, bool):
                continue  # typer passes bools through uncoerced
            answers = []
            for runtime in (build_runtime_param(desc), lean):
                param._runtime_param = None
                try:
                    answers.append(("ok", runtime.coerce(value, param=param, ctx=ctx)))
                except Exception as exc:  # noqa: BLE001 - both must refuse, with the same words
                    answers.append(("error", str(exc)))
            typer_answer, lean_answer = answers
            assert lean_answer == typer_answer, f"{' '.join(path)} {param.name} {value!r}"
            assert type(lean_answer[1]) is type(typer_answer[1])


TOP = [p[0] for p in PATHS if len(p) == 1]


def test_a_command_runs_in_a_group_of_its_own():
    # what makes `tfcompat check` 5 ms faster: typer builds the click parameters of the command asked for only
    from tfcompat.cli import _app_for

    for name in TOP:
        lean = typer.main.get_command(_app_for([name, "--help"]))
        assert list(lean.commands) == [name]
    assert _app_for(["--version"]) is app
    assert _app_for(["chek"]) is app
    assert _app_for([]) is app


@pytest.mark.parametrize("name", TOP)
@pytest.mark.parametrize("tail", [["--help"], ["--no-such-option"]])
def test_the_lone_command_reads_as_in_the_whole_app(capsys, name, tail):
    # help, usage line and errors of each command alone are those of the whole app
    lone = run(capsys, name, *tail)
    whole_code = 0
    from tfcompat.cli import _ClickException

    try:
        app(args=[name, *tail], standalone_mode=False, prog_name="tfcompat")
    except typer.Exit as exc:
        whole_code = exc.exit_code
    except _ClickException as exc:  # a usage error, which main() turns into one line
        assert lone == (2, "", f"tfcompat: error: {exc.format_message()} (see --help)\n")
        return
    out, err = capsys.readouterr()
    assert lone == (whole_code, out, err)


def whole_app(argv, monkeypatch, capsys):
    """`run` as it would answer without the lone-command group: the whole app for every argv."""
    import tfcompat.cli

    with monkeypatch.context() as patched:
        patched.setattr(tfcompat.cli, "_app_for", lambda _argv: app)
        return run(capsys, *argv)


@pytest.mark.parametrize("path", [p for p in PATHS if p], ids=" ".join)
@pytest.mark.parametrize("tail", [["-h"], ["--version"], ["--output"], ["--format", "nope"], ["1", "2", "3", "4"]])
def test_every_command_answers_as_in_the_whole_app(monkeypatch, capsys, path, tail):
    # matrix subcommands too; an option of the group after the command, an option without its value, a bad
    # choice, extra arguments: output, errors and exit code as the whole app gives them
    argv = [*path, *tail]
    assert run(capsys, *argv) == whole_app(argv, monkeypatch, capsys)


def test_completion_with_words_after_the_program_still_sees_every_command(monkeypatch, capsys):
    # shells call `tfcompat` alone, but a hand-written call may pass words: the completion is the whole app's
    monkeypatch.setenv("_TFCOMPAT_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "tfcompat ga")
    monkeypatch.setenv("COMP_CWORD", "1")
    code, out, _ = run(capsys, "check")
    assert code == 0 and out.split() == ["gate"]
