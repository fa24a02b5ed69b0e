"""The command line behaves like one program: one framework (click) for every subcommand, -h
everywhere, choices and paths checked before any work, -o meaning the output path everywhere, no
argv scanning, inapplicable options refused with a reason, per-command exit codes in the help.

Driven as real subprocesses (console scripts of the venv) on a real LightGBM model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from ltrcompile.cli import COMMAND_EXIT_CODES, cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_ENV: dict[str, str] = {}


def run(*args, exe: str = "ltrcompile", timeout: int = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    script = BIN / exe
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ltrcompile"] + (
        ["compile"] if exe == "compile-model" else []
    )
    env = {**os.environ, **_ENV}
    env.pop("LTRCOMPILE_DEBUG", None)
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def one_error(p: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ": error: " in ln]
    assert len(errs) == 1 and lines[-1] == errs[0], p.stderr
    for n in needles:
        assert n in errs[0], (n, errs[0])
    return errs[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ux")
    _ENV["LTRCOMPILE_CACHE"] = str(d / "cache")
    rng = np.random.default_rng(3)
    X = rng.random((400, 4))
    y = X[:, 0] * 2 - X[:, 1]
    lgb.train({"objective": "regression", "num_leaves": 5, "verbose": -1, "num_threads": 1},
              lgb.Dataset(X, y), 6).save_model(str(d / "m.txt"))
    np.save(d / "rows.npy", X[:20])
    fifo = d / "slow.txt"  # reading it would block forever: proves nothing was read
    os.mkfifo(fifo)
    return d


@pytest.fixture(scope="module")
def artifact(files):
    art = files / "art"
    p = run(files / "m.txt", "-o", art, "-q", exe="compile-model")
    assert p.returncode == 0, p.stderr
    return art


SUBCOMMANDS = ["compile", "inspect", "score", "verify", "export", "serve", "bench"]


def test_every_subcommand_accepts_dash_h():
    assert sorted(cli.list_commands(None)) == sorted(SUBCOMMANDS)  # type: ignore[arg-type]
    for args, exe in [([], "ltrcompile"), ([], "compile-model"), *[([c], "ltrcompile") for c in SUBCOMMANDS]]:
        for flag in ("-h", "--help"):
            p = run(*args, flag, exe=exe)
            assert p.returncode == 0, (args, flag, p.stderr)
            assert "Usage:" in p.stdout and "Exit codes:" in p.stdout, (args, p.stdout)


def _listed_codes(help_text: str) -> list[int]:
    para = help_text[help_text.index("Exit codes:"):].split("\n\n")[0]
    return [int(c) for c in re.findall(r"(?:^|, |: )(\d+) ", " ".join(para.split()))]


def test_each_help_lists_only_its_exit_codes():
    for cmd, codes in COMMAND_EXIT_CODES.items():
        args = [] if cmd == "ltrcompile" else [cmd]
        listed = _listed_codes(run(*args, "-h").stdout)
        assert listed == list(codes), (cmd, listed)
    assert 1 not in COMMAND_EXIT_CODES["score"] and 1 not in COMMAND_EXIT_CODES["inspect"]
    assert "parity mismatch" not in run("score", "-h").stdout


def test_bad_choices_rejected_before_the_model_is_read(files):
    """The model is a FIFO nobody writes to: any attempt to read it would hang (timeout)."""
    slow = files / "slow.txt"
    one_error(run(slow, "-o", files / "x", "--strategy", "bogus", exe="compile-model", timeout=60), 2, "bogus", "--strategy")
    assert not (files / "x").exists()
    one_error(run("inspect", slow, "--format", "nope", timeout=60), 2, "nope", "known:")
    one_error(run("export", slow, "--to", "es", "--name", "x", timeout=60), 2, "--name refused")
    one_error(run("score", files / "nope.txt", files / "rows.npy", timeout=60), 2, "nope.txt", "does not exist")
    one_error(run("serve", "--port", "70000", timeout=60), 2, "--port")
    one_error(run("bench", "--batches", "0", timeout=60), 2, "positive integers")


def test_options_that_do_not_apply_are_refused(files, artifact):
    rows = files / "rows.npy"
    one_error(run("score", artifact, rows, "--num-iteration", "5"), 2, "--num-iteration refused", "fixed tree set")
    one_error(run("score", artifact, rows, "--format", "lightgbm-text"), 2, "--format refused", "artifact")
    one_error(run(files / "m.txt", "-o", files / "y", "--no-verify", "--verify", rows, exe="compile-model"), 2,
              "--verify refused", "--no-verify")
    one_error(run(files / "m.txt", "-o", files / "y", "--no-verify", "--atol", "0.1", exe="compile-model"), 2, "--atol refused")
    one_error(run("inspect", files / "m.txt", "--index-base", "1"), 2, "--index-base refused")
    one_error(run("inspect", files / "m.txt", "--data", rows), 2, "--data refused", "--importance")
    # the same options where they apply are fine
    assert run("score", files / "m.txt", rows, "--num-iteration", "3", "-q").returncode == 0
    assert run("score", artifact, rows, "-q").returncode == 0


def test_dash_o_is_the_output_path_everywhere(files, artifact):
    for spelling in ("-o", "--output", "--out"):
        out = files / f"art{spelling.strip('-')}"
        assert run(files / "m.txt", spelling, out, "-q", "--no-verify", exe="compile-model").returncode == 0
        assert (out / "compile-model.json").exists()
    for spelling in ("-o", "--output"):
        s = files / f"s{spelling.strip('-')}.csv"
        assert run("score", artifact, files / "rows.npy", spelling, s, "-q").returncode == 0 and s.exists()
        e = files / f"e{spelling.strip('-')}.json"
        assert run("export", files / "m.txt", "--to", "ranklib", "--approximate", spelling, e).returncode == 0 and e.exists()


def test_json_and_debug_come_from_the_parsed_options_not_argv(files, tmp_path):
    """A file literally named --json / --debug is an argument, not a flag: no JSON, no traceback."""
    bad = tmp_path / "--json"
    bad.write_text('{"learner": {')
    p = run("inspect", "--", "--json", cwd=tmp_path)
    one_error(p, 2, "--json")
    assert p.stdout == ""
    (tmp_path / "--debug").write_text('{"learner": {')
    one_error(run("inspect", "--", "--debug", cwd=tmp_path), 2)
    # the real flags still work, before or after the subcommand
    p = run("inspect", bad, "--json")
    assert p.returncode == 2 and json.loads(p.stdout)["exit_code"] == 2
    assert "Traceback" in run("inspect", bad, "--debug").stderr
    assert "Traceback" in run("--debug", "inspect", bad).stderr


# --------------------------------------------------------------------------- export proves itself
_PRINTED = re.compile(r"max \|Δ\| ([0-9.e+-]+|inf) \(")


def _printed_error(stderr: str) -> float:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("round trip:"))
    if "bit-identically" in line:
        return 0.0
    return float(_PRINTED.search(line).group(1))


def _independent_max_diff(src_path: Path, exported: Path, target: str) -> float:
    """Read both files with ltrcompile.load_model and compare on the source's edge rows (Elasticsearch
    native: rows without +-inf, which it reads as missing by design)."""
    from ltrcompile import load_model
    from ltrcompile.edgecases import edge_rows
    from ltrcompile.frontends import ranklib

    src = load_model(str(src_path))
    if target == "ranklib":
        back = ranklib.load(exported)
    elif target == "o19s":  # a _createmodel body names features; the set comes with the source
        back = load_model(json.loads(exported.read_text()), feature_set=src.feature_names)
    else:
        back = load_model(json.loads(exported.read_text()))
    rows = edge_rows(src)
    if target == "es":
        rows = rows[~np.isinf(rows).any(axis=1)]
    raw = src.transform != back.transform
    a = np.asarray(src.predict(rows, raw_score=raw), float)
    b = np.asarray(back.predict(rows[:, : back.n_features], raw_score=raw), float)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return float(np.where(same, 0.0, np.abs(a - b)).max())


RANKLIB_LM = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ranklib" / "lambdamart.model.txt"


@pytest.mark.parametrize(
    ("source", "target", "flags"),
    [("lgb", "es", []), ("lgb", "o19s", ["--approximate"]), ("lgb", "ranklib", ["--approximate"]),
     ("ranklib", "o19s", []), ("ranklib", "ranklib", []), ("ranklib", "es", ["--approximate"])],
)
def test_every_export_target_round_trips_within_its_printed_error(files, source, target, flags):
    src = files / "m.txt" if source == "lgb" else RANKLIB_LM
    if not src.exists():
        pytest.skip(f"{src} not available")
    out = files / f"{source}.{target}.out"
    p = run("export", src, "--to", target, *flags, "-o", out)
    assert p.returncode == 0, p.stderr
    printed = _printed_error(p.stderr)
    measured = _independent_max_diff(src, out, target)
    assert measured <= printed * (1 + 5e-3), (printed, measured, p.stderr)
    if not flags and target != "es":
        assert printed == 0.0  # exact exports read back bit for bit


def test_lightgbm_to_elasticsearch_is_the_default_with_its_measured_error(files):
    """The main migration path: accepted without --approximate (Elasticsearch adds the same double
    terms with a compensated sum); the measured error is a few ulps; --exact refuses it."""
    out = files / "default.es.json"
    p = run("export", files / "m.txt", "--to", "es", "-o", out)
    assert p.returncode == 0, p.stderr
    assert "summed in another order" in p.stderr
    assert _printed_error(p.stderr) <= 1e-13
    assert "absent from a sparse (svmlight) row as missing (NaN), the source as 0" in p.stderr
    one_error(run("export", files / "m.txt", "--to", "es", "--exact", "-o", files / "x.json"), 3, "accumulation")
    one_error(run("export", files / "m.txt", "--to", "es", "--exact", "--approximate"), 2, "--exact refused")


def test_score_states_the_absent_entry_rule_once(files):
    svm = files / "rows.svm"
    svm.write_text("0 1:0.5 3:0.25\n1 2:0.75\n")
    for model, rule in ((files / "m.txt", "read as 0 "), (files / "default.es.json", "read as missing (NaN)")):
        if not model.exists():
            assert run("export", files / "m.txt", "--to", "es", "-o", model).returncode == 0
        p = run("score", model, svm, "--index-base", "1")
        assert p.returncode == 0, p.stderr
        notes = [ln for ln in p.stderr.splitlines() if "absent entries" in ln]
        assert len(notes) == 1 and rule in notes[0], p.stderr
        assert "absent entries" not in run("score", model, svm, "--index-base", "1", "-q").stderr
    # dense rows have no absent entries: nothing to say
    assert "absent entries" not in run("score", files / "m.txt", files / "rows.npy").stderr
