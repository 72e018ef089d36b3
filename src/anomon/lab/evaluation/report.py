"""Write an evaluation report folder: ``report.md``, ``results.json`` and ``roc.png``."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from anomon.lab.evaluation.cdnow import ANOMON, BGNBD, CdnowReport, drop_off_context

log = logging.getLogger(__name__)


def write_report(report: CdnowReport, out: Path) -> list[Path]:
    """Write the folder; the PNG only when matplotlib is installed (the ``docs`` extra)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "report.md"]
    data = report.to_dict()
    data["goal"] = {"anomon_auc_at_least": 0.77, "not_below": BGNBD, "met": report.passed()}
    written[0].write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    written[1].write_text(markdown(report))
    png = out / "roc.png"
    try:
        plot_roc(report, png)
        written.append(png)
    except ImportError:
        log.warning("matplotlib not installed (pip install 'anomon[docs]'): no roc.png")
    return written


def markdown(report: CdnowReport) -> str:
    """The report as Markdown tables, one per cutoff."""
    lines = ["# Churn scores on CDNOW", "",
             f"anomon's churn model (horizon {report.horizon_days:.0f} days), replayed online "
             "through the engine, against BG/NBD fitted on the same purchases and against "
             "recency. Truth: no purchase from the cutoff to the end of the data. "
             f"Goal (AUC >= 0.77 and never below BG/NBD): "
             f"{'met' if report.passed() else 'not met'}.", ""]
    for c in report.cutoffs:
        lines += [f"## Cutoff {c.cutoff} (holdout to {c.holdout_end})", "",
                  f"{c.customers:,} customers, {c.churned:,} gone; {c.repeat_buyers:,} repeat "
                  f"buyers; {c.events:,} purchases replayed; {c.labels_learned:,} churn labels "
                  f"learned; {c.seconds:.0f} s.", "",
                  "| score (higher = more likely gone) | ROC AUC | AUC, repeat buyers | "
                  "precision, top 10% |", "| --- | --- | --- | --- |"]
        for name, value in sorted(c.auc.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {name} | {value:.3f} | {c.auc_repeat_buyers[name]:.3f} | "
                         f"{c.precision_top10[name]:.3f} |")
        drop = ("none open" if c.drop_off_precision is None
                else f"{c.drop_off_precision:.3f} ({c.drop_off_open:,} open)")
        progressive = "-" if c.progressive_auc is None else f"{c.progressive_auc:.3f}"
        drop = "; ".join([drop, *drop_off_context(c)])
        lines += ["", f"- drop-off alerts open at the cutoff, precision: {drop}",
                  f"- anomon log-loss: {c.anomon_log_loss:.3f}",
                  f"- delayed progressive validation ROC AUC of the learned labels: "
                  f"{progressive}", ""]
    lines += ["![ROC curves](roc.png)", ""]
    return "\n".join(lines)


def plot_roc(report: CdnowReport, path: Path) -> None:
    """ROC curves of every score, one panel per cutoff."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(report.cutoffs), figsize=(6 * len(report.cutoffs), 5.5),
                             squeeze=False)
    for ax, c in zip(axes[0], report.cutoffs, strict=True):
        for name, points in c.roc.items():
            style = {"linewidth": 2.4} if name == ANOMON else {"linewidth": 1.2}
            ax.plot([p[0] for p in points], [p[1] for p in points],
                    label=f"{name} ({c.auc[name]:.3f})", **style)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
        ax.set(title=f"CDNOW, cutoff {c.cutoff}", xlabel="false positive rate",
               ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
