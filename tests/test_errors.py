"""Library errors name settings, not command-line flags; the command line shows its flags.

A library message refers to a setting with ``errors.option(key)``: ``str(exc)`` shows the config
key, ``cli.flag`` the flag the user types. The static test reads every string of the library
(all of src/segkit but the cli package, which is the command line).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, write_csv

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
COMMAND_LINE = ROOT / "src" / "segkit" / "cli"


def _library_strings():
    """(file, line, text) of each string literal in the library, docstrings left out."""
    for path in sorted((ROOT / "src" / "segkit").rglob("*.py")):
        if COMMAND_LINE in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                yield path.relative_to(ROOT), node.lineno, node.value


def test_no_library_string_names_a_flag():
    found = [f"{path}:{line}: {text!r}" for path, line, text in _library_strings() if FLAG.search(text)]
    assert found == []


def test_the_static_check_sees_flags():
    """The pattern the test above relies on finds a flag in an f-string part and leaves prose alone."""
    tree = ast.parse('msg = f"{source}: too many; accept them with --max-bad-rows {share}"')
    parts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert any(FLAG.search(p) for p in parts)
    assert not FLAG.search("rows 3--5, a well-known co-op -- see above")


def _bad_rows_csv(path: Path) -> Path:
    return write_csv(path, ["customer", "date", "amount"],
                     [["A", "2024-01-01", "10"], ["B", "not a date", "20"], ["C", "yesterday", "5"]])


def _raised(call):
    from segkit.errors import SegkitError

    with pytest.raises(SegkitError) as info:
        call()
    return info.value


def test_library_errors_carry_the_setting_and_the_cli_shows_the_flag(tmp_path):
    from segkit import config
    from segkit.ingest.clean import clean
    from segkit.cli.flags import flag
    from segkit.ingest.read import read_input
    from segkit.customers.migration import find_previous
    from segkit.sample import generate

    cfg = config.load(None, use_env=False)
    bad = _bad_rows_csv(tmp_path / "bad.csv")
    cases = [
        (lambda: clean(read_input(str(bad)), cfg), ["columns", "input.max_bad_rows"],
         ["map another with --map,", "--max-bad-rows 0.67 "]),
        (lambda: read_input(str(bad), mapping={"amount": "Betrag"}), ["columns.amount"], ["--map amount=Betrag:"]),
        (lambda: read_input(str(bad), encoding="klingon"), ["input.encoding"], ["--encoding klingon:"]),
        (lambda: find_previous(str(tmp_path / "gone"), "out", None, None), ["previous"], ["--previous "]),
        (lambda: generate(0, 0), ["rows", "customers"], ["--rows and --customers must"]),
    ]
    for call, keys, shown in cases:
        exc = _raised(call)
        assert exc.options == keys
        assert not FLAG.search(str(exc)), str(exc)
        assert all(key in str(exc) for key in keys)
        assert all(text in exc.render(flag) for text in shown), exc.render(flag)


def test_the_user_sees_the_flags(tmp_path):
    bad = _bad_rows_csv(tmp_path / "bad.csv")
    err = run_cli("inspect", str(bad), "--map", "amount=Betrag").stderr.decode()
    assert "--map amount=Betrag: no column 'Betrag'" in err and "columns.amount" not in err
    err = run_cli("segment", str(bad), "-o", str(tmp_path / "out"), "-q").stderr.decode()
    assert "map another with --map, or accept them with --max-bad-rows 0.67 " in err
    assert "\x1e" not in err and "input.max_bad_rows" not in err
