"""Every `typedmaps` subcommand explains itself, and usage errors are one line.

The subcommands are read from the real parser, so one added later is
checked too: it needs a description, examples that the parser accepts, a
line in docs/cli.md's synopsis, and the exit codes stay those of the page.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from typedmaps import _cli

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _cli.build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def examples(p: argparse.ArgumentParser) -> list[str]:
    text = p.epilog or ""
    assert "examples:\n" in text
    block = text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typedmaps", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_there_are_subcommands() -> None:
    assert {"list", "show", "dump", "gen", "export"} <= set(subcommands())


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_subcommand_has_description_and_examples(name: str) -> None:
    p = subcommands()[name]
    assert len((p.description or "").split()) >= 8, f"{name}: no real description"
    ex = examples(p)
    assert ex, f"typedmaps {name} --help has no example"
    for line in ex:
        assert line.startswith(f"typedmaps {name}"), f"{name}: example {line!r}"
        # The example is a command line the parser accepts (comment and pipe cut off).
        argv = shlex.split(line.split(" #", 1)[0].split(" | ", 1)[0])[1:]
        _cli.build_parser().parse_args(argv)
    proc = run(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "examples:" in proc.stdout
    assert " ".join((p.description or "").split()[:6]) in " ".join(proc.stdout.split())


def test_top_level_help_lists_every_command_and_the_exit_codes() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for name, p in subcommands().items():
        assert re.search(rf"^\s+{name}\s+\S", proc.stdout, re.M), f"{name} not in --help"
        assert p.description
    assert "exit codes:" in proc.stdout


def test_help_says_json_only_where_json_is_asked_for() -> None:
    """Text is the default output; a summary or an example that speaks of JSON names --json."""
    parser = _cli.build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {a.dest: a.help or "" for a in action._choices_actions}
    for name, p in subcommands().items():
        if "JSON" in summaries[name]:
            assert "--json" in summaries[name], (name, summaries[name])
        for line in examples(p):
            if " | jq" in line:  # jq reads JSON: the command must have printed it
                assert "--json" in line.split(" | jq", 1)[0], (name, line)
    proc = run("--help")
    assert "(text, or JSON Lines with --json)" in " ".join(proc.stdout.split())


def test_docs_list_every_command_and_the_same_exit_codes() -> None:
    text = CLI_DOC.read_text()
    synopsis = text.split("```", 2)[1]
    for name in subcommands():
        assert f"typedmaps {name}" in synopsis, f"docs/cli.md's synopsis lacks {name}"
    table = text.split("## Exit codes", 1)[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}
    codes = {
        _cli.EXIT_OK,
        _cli.EXIT_ERROR,
        _cli.EXIT_USAGE,
        _cli.EXIT_NOT_FOUND,
        _cli.EXIT_PERMISSION,
        _cli.EXIT_UNSUPPORTED,
        _cli.EXIT_INTERNAL,
        _cli.EXIT_INTERRUPTED,
    }
    assert documented == codes
    epilog = _cli.build_parser().epilog or ""
    for code in codes:
        assert f"{code} " in epilog.split("exit codes:", 1)[1]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((), "required: COMMAND"),
        (("nosuch",), "invalid choice"),
        (("dump",), "required: MAP"),
        (("dump", "--bogus", "id:1"), "unrecognized arguments"),
        (("export", "--prometheus"), "expected one argument"),
        (("export", "id:1"), "required: --prometheus"),
        (("list", "--json", "extra"), "unrecognized arguments"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: tuple[str, ...], text: str) -> None:
    proc = run(*args)
    assert proc.returncode == _cli.EXIT_USAGE
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("typedmaps"), proc.stderr
    assert text in proc.stderr
    assert "--help)" in proc.stderr  # says where to look
