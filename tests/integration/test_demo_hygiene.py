"""``anomon demo`` leaves no process behind, whatever ends it.

Each test runs the real demo (its own embedded Tansu broker and worker
subprocess) with a marker in its environment, which the broker and the worker
inherit; a process is the demo's if ``/proc/PID/environ`` holds the marker.
After the demo is gone, no such process may remain.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--customers", "300", "--days", "120"]
pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                reason="reads /proc to find the demo's processes")


def marked(mark: str) -> dict[int, str]:
    """Processes whose environment holds ``mark``: pid -> command line."""
    found = {}
    needle = mark.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(
                    b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def wait_none_left(mark: str, timeout: float = 20.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    left = marked(mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.3)
        left = {pid: cmd for pid, cmd in marked(mark).items() if not _zombie(pid)}
    return left


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def mark() -> Iterator[str]:
    value = f"anomon-demo-test-{uuid.uuid4().hex}"
    yield value
    for pid in marked(value):  # whatever a failed test left: stop it
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def demo_env(mark: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["DEMO_TEST_MARK"] = mark
    return env


def start_demo(mark: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    err = tmp_path / "demo.err"
    proc = subprocess.Popen([sys.executable, "-m", "anomon", "demo", *SMALL],
                            stdout=subprocess.PIPE, stderr=err.open("w"), text=True,
                            env=demo_env(mark), cwd=tmp_path)
    return proc, err


def first_alert(proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("event "):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError("no alert printed")


def test_a_closed_pipe_stops_the_demo_and_its_children(mark: str, tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m anomon demo {' '.join(SMALL)} | head -n 2"],
        capture_output=True, text=True, timeout=180, env=demo_env(mark), cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("event ") for line in lines), done.stdout
    assert all(len(line) <= 120 for line in lines)
    assert "Traceback" not in done.stderr
    assert wait_none_left(mark) == {}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_stops_the_demo_and_its_children(mark: str, tmp_path: Path,
                                                  sig: signal.Signals) -> None:
    proc, err = start_demo(mark, tmp_path)
    try:
        first_alert(proc)
        children = marked(mark)
        assert len(children) >= 2, children  # the broker and the worker
        proc.send_signal(sig)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err.read_text()
    assert wait_none_left(mark) == {}


@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_the_broker_dying_first_stops_the_demo_and_the_worker(mark: str,
                                                              tmp_path: Path) -> None:
    proc, err = start_demo(mark, tmp_path)
    try:
        first_alert(proc)
        brokers = [pid for pid, cmd in marked(mark).items() if "--listener-url" in cmd]
        assert len(brokers) == 1
        os.kill(brokers[0], signal.SIGKILL)
        assert proc.wait(90) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.read_text()
    assert "failed: the broker exited" in text and "Traceback" not in text
    assert wait_none_left(mark) == {}


def test_the_demo_killed_outright_takes_its_children_along(mark: str, tmp_path: Path) -> None:
    """No clean-up code runs on SIGKILL: the kernel's parent-death signal does it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    proc, _ = start_demo(mark, tmp_path)
    try:
        first_alert(proc)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_none_left(mark, timeout=60.0) == {}
