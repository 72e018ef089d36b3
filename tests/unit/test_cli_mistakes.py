"""A user's mistakes at the ``anomon`` command line: one line naming the fix, never a traceback.

Exit code 2 for a wrong argument or setting, 1 for a failure (a broker that is
not there, a file whose every line is rejected). The cases with no broker run
in-process; the ones that try a (closed) port run the real command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anomon.cli.main import MAX_DAYS, MIN_DAYS, build_parser, main
from anomon.kafka.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``anomon ARGV`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("anomon")
    return lines[0]


@pytest.mark.parametrize(("argv", "says"), [
    (["tail", "--severity", "critcal"], "did you mean critical?"),
    (["tail", "--kind", "dropoff"], "did you mean drop_off?"),
    (["tail", "--kind", "churn"], "is not a kind"),
    (["tail", "--segment", "hi"], "did you mean high?"),
    (["tail", "--segment", "high/sleepy"], "a stage: new, active"),
    (["tail", "--limit", "0"], "at least 1"),
    (["tail", "--give-up-after", "-3"], "must be above 0"),
    (["produce", "--days", "5"], f"at least {MIN_DAYS}"),
    (["produce", "--days", "five"], "is not a whole number"),
    (["produce", "--file", "no-such-events.jsonl"], "no such file"),
    (["demo", "--days", "3"], f"at least {MIN_DAYS}"),
    (["demo", "--rate", "-5"], "must be above 0"),
    (["demo", "--web-port", "70000"], "at most 65535"),
    (["generate", "--events", "e.jsonl", "--truth", "t.jsonl", "--days", "99999"],
     f"at most {MAX_DAYS}"),
    (["replay", "no-such-events.jsonl", "--out", "a.jsonl"], "no such file"),
    (["--log-level", "LOUD", "tail"], "is not a log level"),
    (["frobnicate"], "invalid choice"),
    (["dlq", "list", "--from-offset", "3"], "need --partition"),
    (["dlq", "list", "--partition", "-1"], "at least 0"),
])
def test_a_wrong_argument_is_one_line_and_exit_code_2(
        capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert says in one_line(err)


def test_no_folder_is_created_for_an_output(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "e1"}\n')
    missing = tmp_path / "no" / "such" / "dir"
    for argv in (["replay", str(events), "--out", str(missing / "alerts.jsonl")],
                 ["replay", str(events), "--out", str(tmp_path / "a.jsonl"),
                  "--dlq", str(missing / "rejects.jsonl")],
                 ["generate", "--events", str(missing / "e.jsonl"), "--truth",
                  str(tmp_path / "t.jsonl")]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and f"mkdir -p {missing}" in one_line(err)
    assert not (tmp_path / "no").exists()
    code, _, err = run(capsys, "replay", str(events), "--out", str(tmp_path))
    assert code == 2 and "is a folder" in one_line(err)


def test_a_file_whose_every_line_is_rejected_fails(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('garbage\n{"customer_id": "c1", "type": "teleport"}\n[1, 2]\n')
    code, out, err = run(capsys, "replay", str(bad), "--out", str(tmp_path / "a.jsonl"))
    assert code == 1
    assert "rejected 3" in out
    assert "every line of" in one_line(err) and "--dlq" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    code, _, err = run(capsys, "replay", str(empty), "--out", str(tmp_path / "a.jsonl"))
    assert code == 1 and "holds no events" in one_line(err)


def test_a_wrong_setting_in_the_environment_is_named(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMON_WEB_PORT", "sixty")
    code, _, err = run(capsys, "tail", "--limit", "1")
    assert code == 2 and "ANOMON_WEB_PORT" in one_line(err)
    monkeypatch.delenv("ANOMON_WEB_PORT")
    monkeypatch.setenv("ANOMON_LOG_LEVEL", "chatty")
    code, _, err = run(capsys, "tail", "--limit", "1")
    assert code == 2 and "ANOMON_LOG_LEVEL" in one_line(err)


def test_help_states_the_choices_bounds_and_exit_codes() -> None:
    parser = build_parser()
    top = parser.format_help()
    assert "0 ok, 1 failure, 2 usage error" in top
    sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert f"{MIN_DAYS} to {MAX_DAYS}" in sub["produce"].format_help()
    assert f"{MIN_DAYS} to {MAX_DAYS}" in sub["demo"].format_help()
    tail = sub["tail"].format_help()
    assert "drop_off" in tail and "critical" in tail and "at_risk" in tail


def test_the_days_bounds_are_the_synthetic_generators() -> None:
    from anomon.lab.synthetic import SyntheticConfig

    bounds = {type(m).__name__: m for m in SyntheticConfig.model_fields["days"].metadata}
    assert (bounds["Ge"].ge, bounds["Le"].le) == (MIN_DAYS, MAX_DAYS)


# -- against a port where no broker listens: the real command ---------------------------------

def anomon(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "anomon", *argv], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("argv", [
    ["dlq", "list"],
    ["erase", "c-1"],
    ["produce", "--customers", "1", "--days", "28"],
])
def test_no_broker_is_one_line_naming_it_and_exit_code_1(argv: list[str]) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    done = anomon(*argv, "--broker", f"kafka://{bootstrap}")
    assert done.returncode == 1, done.stderr
    line = one_line(done.stderr)
    assert bootstrap in line and "pass --broker" in line
    assert "Unclosed" not in done.stderr
    assert line.count("KafkaConnectionError") <= 1


def test_forward_backs_off_then_gives_up_with_one_message() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    done = anomon("forward", "--broker", f"kafka://{bootstrap}", "--url",
                  f"http://127.0.0.1:{free_port()}/", "--give-up-after", "3")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"anomon forward: broker {bootstrap} unreachable for ")
    assert "--broker" in lines[-1]
    retries = [line for line in lines if "retrying" in line]
    assert 1 <= len(retries) <= 4, lines


def test_tail_backs_off_then_gives_up_with_one_message() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    done = anomon("tail", "--broker", f"kafka://{bootstrap}", "--give-up-after", "3")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"anomon tail: broker {bootstrap} unreachable for ")
    assert "--broker" in lines[-1]
    retries = [line for line in lines if "retrying" in line]
    assert 1 <= len(retries) <= 4, lines  # 0.5 s, 1 s, 2 s... not a flood
