"""``anomon evaluate cdnow``: anomon's churn score against BG/NBD and recency on real purchases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anomon.cli.main import main
from anomon.lab.evaluation import cdnow

pytest.importorskip("lifetimes", reason="the CDNOW data and BG/NBD come with anomon[cdnow]")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("cdnow")
    assert main(["evaluate", "cdnow", "--detectors", "models/detectors.toml",
                 "--out", str(out)]) == 0
    assert (out / "report.md").read_text().startswith("# Churn scores on CDNOW")
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_both_classic_cutoffs_are_judged(report: dict) -> None:
    cutoffs = {c["cutoff"]: c for c in report["cutoffs"]}
    assert set(cutoffs) == {"1997-09-30", "1997-12-31"}
    for c in cutoffs.values():
        assert c["customers"] == 23570 and c["holdout_end"] == "1998-06-30"
        assert 0.6 < c["churned"] / c["customers"] < 0.8
        assert 0 < c["repeat_buyers"] < c["customers"]
        assert c["labels_learned"] > 100_000


@pytest.mark.slow
def test_baselines_reproduce_published_figures(report: dict) -> None:
    published = {"1997-09-30": (0.763, 0.759), "1997-12-31": (0.799, 0.796)}
    for c in report["cutoffs"]:
        bgnbd, recency = published[c["cutoff"]]
        assert c["auc"]["BG/NBD expected holdout purchases (fewer)"] == pytest.approx(bgnbd,
                                                                                   abs=0.005)
        assert c["auc"]["days since last purchase"] == pytest.approx(recency, abs=0.005)


@pytest.mark.slow
def test_anomon_churn_score_meets_the_goal_at_both_cutoffs(report: dict) -> None:
    assert report["goal"]["met"]
    for c in report["cutoffs"]:
        ours = c["auc"]["anomon churn probability"]
        assert ours >= 0.77
        assert ours >= c["auc"]["BG/NBD expected holdout purchases (fewer)"]
        assert ours > c["auc"]["days since last purchase"]
        assert c["precision_top10"]["anomon churn probability"] > c["churned"] / c["customers"]


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
