"""Render the Grafana dashboard's panels to a PNG from a short real run.

``python -m bench.dashboard_png [--seconds 150] [--out docs/dashboard.png]``

Starts the embedded broker (Tansu), one worker (event-time sweep clock) and a
real Prometheus (the ``prometheus`` binary, Debian's package) scraping it every
2 s with ``config/prometheus/rules.yml``; sends synthetic customers (a few
hundred simulated days, with a small share of invalid events) for ``--seconds``;
then runs every panel's PromQL from ``config/grafana/dashboards/anomon.json``
through Prometheus's query_range API and draws each panel with matplotlib
(``pip install -e '.[docs]'``). Range windows are shortened to fit the run
(5m -> 20s, 15m -> 30s, 1h -> 1m, 1d -> 2m); the figure says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "anomon.json"
RULES = ROOT / "config" / "prometheus" / "rules.yml"
WINDOWS = {"[5m]": "[20s]", "[15m]": "[30s]", "[1h]": "[1m]", "[1d]": "[2m]"}
SCRAPE_S = 2


def shorten(expr: str) -> str:
    """The panel's query with range windows fit for a few minutes of data, every job and instance.

    >>> shorten('sum(increase(x{job=~"$job"}[1h])) / sum(rate(y{instance=~"$instance"}[5m]))')
    'sum(increase(x{job=~".*"}[1m])) / sum(rate(y{instance=~".*"}[20s]))'
    """
    for long, short in WINDOWS.items():
        expr = expr.replace(long, short)
    return expr.replace("$job", ".*").replace("$instance", ".*")


def legend(fmt: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend format filled in.

    >>> legend("{{tier}} / {{stage}}", {"tier": "high", "stage": "new"})
    'high / new'
    """
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt) or "value"


def panels() -> list[dict[str, Any]]:
    """The dashboard's panels, rows left out, in layout order."""
    board = json.loads(DASHBOARD.read_text())
    out = [p for p in board["panels"] if p["type"] != "row"]
    return sorted(out, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def _events(customers: int, days: int, bad_every: int) -> Iterator[dict[str, Any]]:
    from anomon.lab.synthetic import SyntheticConfig, generate
    from anomon.ops.producer import start_to_end_today

    # the simulated history ends today, as `anomon produce --end-now` sends it: event times
    # and the event-time lag read as on live traffic
    config = SyntheticConfig(customers=customers, days=days, start=start_to_end_today(days))
    for n, event in enumerate(generate(config)):
        yield event
        if n % bad_every == bad_every - 1:
            broken = dict(event, event_id=f"{event['event_id']}-bad")
            if n % (2 * bad_every) < bad_every:
                broken["type"] = "teleport"
            else:
                broken["ts"] = "1970-01-02T00:00:00+00:00"
            yield broken


def query_range(prom: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    """Prometheus query_range result (one entry per series)."""
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end,
                                    "step": SCRAPE_S})
    with urllib.request.urlopen(f"{prom}/api/v1/query_range?{query}", timeout=30) as resp:
        body = json.loads(resp.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return list(body["data"]["result"])


def run(seconds: float, customers: int, days: int, rate: float, workdir: Path
        ) -> tuple[str, float, float, subprocess.Popen[bytes]]:
    """Broker, worker, Prometheus and producer; returns Prometheus's URL and the run's span."""
    from anomon.ops.producer import produce_async
    from anomon.settings import Settings
    from brokers import broker_named

    prometheus = shutil.which("prometheus")
    if prometheus is None:
        sys.exit("needs the prometheus binary (apt-get install prometheus)")
    broker = broker_named("tansu").start()
    web_port, prom_port = _free_port(), _free_port()
    settings = Settings(broker=broker.url, app_id="anomon-png", web_port=web_port,
                        data_dir=workdir / "worker", sweep_interval_s=1.0, sweep_clock="event",
                        input_topic="png-events", alerts_topic="png-alerts",
                        dlq_topic="png-dlq", late_topic="png-late")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}
    env.update({f"ANOMON_{k.upper()}": str(v) for k, v in settings.model_dump().items()
                if v is not None and not k.startswith(("forward_", "sasl_"))})
    env["ANOMON_LOG_LEVEL"] = "WARNING"
    worker = subprocess.Popen([sys.executable, "-m", "anomon.worker.worker"], env=env,
                              cwd=ROOT, start_new_session=True)
    (workdir / "prom").mkdir()
    shutil.copy(RULES, workdir / "prom" / "rules.yml")
    (workdir / "prom" / "prometheus.yml").write_text(
        f"global: {{scrape_interval: {SCRAPE_S}s, evaluation_interval: {SCRAPE_S}s}}\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n  - job_name: anomon\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{web_port}']\n")
    prom = subprocess.Popen(
        [prometheus, f"--config.file={workdir / 'prom' / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'prom' / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{web_port}/metrics", 90)
        _wait_http(f"http://127.0.0.1:{prom_port}/-/ready", 60)
        start = time.time()
        time.sleep(3 * SCRAPE_S)
        stop = asyncio.Event()

        async def produce() -> Any:
            asyncio.get_running_loop().call_later(seconds, stop.set)
            return await produce_async(settings, _events(customers, days, 150), rate=rate,
                                       stop=stop)

        report = asyncio.run(produce())
        print(f"sent {report.sent} events in {seconds:.0f} s", file=sys.stderr)
        time.sleep(6 * SCRAPE_S)
        end = time.time()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        broker.stop()
    return f"http://127.0.0.1:{prom_port}", start, end, prom


def draw(prom: str, start: float, end: float, out: Path, seconds: float) -> None:
    """One subplot per panel, from Prometheus's answers to the panels' own queries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = panels()
    cols = 4
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(22, 3.6 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, items, strict=False):
        ax.set_title(panel["title"], fontsize=10, loc="left")
        drawn = 0
        bars: list[tuple[str, float]] = []
        for target in panel["targets"]:
            for series in query_range(prom, shorten(target["expr"]), start, end):
                name = legend(target.get("legendFormat", ""), series["metric"])
                ts = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                if panel["type"] == "bargauge":
                    bars.append((name, ys[-1]))
                    continue
                ax.plot(ts, ys, label=name, linewidth=1.4)
                drawn += 1
        if bars:
            bars.sort(key=lambda b: b[1])
            ax.barh([b[0] for b in bars], [b[1] for b in bars], color="tab:blue")
            ax.tick_params(axis="y", labelsize=7)
            drawn = len(bars)
        elif drawn:
            ax.set_xlabel("seconds into the run", fontsize=8)
            if drawn <= 8:
                ax.legend(fontsize=7, loc="upper left")
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        if unit in ("s", "ops", "percentunit"):
            ax.set_ylabel({"s": "seconds", "ops": "per second", "percentunit": "share"}[unit],
                          fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    windows = ", ".join(f"{k[1:-1]} -> {v[1:-1]}" for k, v in WINDOWS.items())
    fig.suptitle(f"anomon dashboard, rendered from Prometheus after a {seconds:.0f}-second run "
                 f"(one worker, synthetic customers; range windows shortened: {windows})",
                 fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=70)
    print(f"wrote {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_png",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="sending time (150)")
    parser.add_argument("--customers", type=int, default=400, help="simulated customers (400)")
    parser.add_argument("--days", type=int, default=300, help="simulated days (300)")
    parser.add_argument("--rate", type=float, default=300.0,
                        help="events/s sent (300: one worker keeps up on a busy 2-core machine)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="anomon-png-") as tmp:
        prom_url, start, end, prom = run(args.seconds, args.customers, args.days, args.rate,
                                         Path(tmp))
        try:
            time.sleep(2 * SCRAPE_S)
            draw(prom_url, start, end, args.out, args.seconds)
        finally:
            prom.terminate()
            prom.wait(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
