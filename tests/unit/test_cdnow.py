"""``anomon evaluate cdnow``: anomon's churn score against BG/NBD and recency on real purchases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anomon.cli import main
from anomon.evaluation import cdnow

pytest.importorskip("lifetimes", reason="the CDNOW data and BG/NBD come with anomon[cdnow]")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("cdnow") / "report.json"
    assert main(["evaluate", "cdnow", "--detectors", "models/detectors.toml",
                 "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_the_split_is_the_classic_one(report: dict) -> None:
    assert report["customers"] == 23570
    assert report["calibration_end"] == "1997-09-30"
    assert report["holdout_end"] == "1998-06-30"
    assert 0.6 < report["churned"] / report["customers"] < 0.8


def test_baselines_reproduce_published_figures(report: dict) -> None:
    auc = report["auc"]
    assert auc["BG/NBD expected holdout purchases (fewer)"] == pytest.approx(0.763, abs=0.005)
    assert auc["days since last purchase"] == pytest.approx(0.759, abs=0.005)


def test_anomon_churn_score_beats_bgnbd_and_recency(report: dict) -> None:
    auc = report["auc"]
    assert auc["anomon churn probability"] > auc["BG/NBD expected holdout purchases (fewer)"]
    assert auc["anomon churn probability"] > auc["days since last purchase"]
    assert report["labels_learned"] > 100_000


def test_parse_skips_the_header_and_reads_amounts() -> None:
    rows = cdnow.parse_lines([" customer_id  date number_of_cds  dollar_value",
                              " 00003 19970102  2   20.76"])
    assert [(r.customer_id, r.day, r.quantity, r.amount) for r in rows] == [
        ("00003", "1997-01-02", 2, 20.76)]


def test_a_missing_data_file_is_reported_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(cdnow.DATA_ENV, str(tmp_path / "absent.txt"))
    assert main(["evaluate", "cdnow", "--no-bgnbd"]) == 1
