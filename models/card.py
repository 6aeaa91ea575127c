"""Model card (markdown + JSON) and the precision-recall curve PNG of a trained model."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve


def git_revision(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def pr_curve_png(
    scores: np.ndarray, labels: np.ndarray, *, title: str, threshold: float | None
) -> bytes:
    """PNG bytes of the precision-recall curve, with the review threshold marked."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=100)
    axes.plot(recall, precision, color="#1f5fa8", lw=1.8, label="model")
    axes.axhline(float(np.mean(labels)), color="grey", ls="--", lw=1, label="fraud rate")
    if threshold is not None and len(thresholds):
        i = min(int(np.searchsorted(thresholds, threshold)), len(thresholds) - 1)
        axes.scatter(
            [recall[i]],
            [precision[i]],
            color="#c0392b",
            zorder=3,
            label=f"review threshold {threshold:.3f}",
        )
    axes.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def card_markdown(card: dict[str, Any]) -> str:
    """Human-readable model card from the JSON card."""
    metrics = card["metrics"]
    at = metrics.get("at_review_threshold", {})
    windows, rows, rate = card["windows"], card["rows"], card["fraud_rate"]
    lines = [
        f"# Model card - {card.get('version', 'unregistered')}",  # registry sets the version
        "",
        "LightGBM fraud classifier, served as ONNX. Test window is later in time than training.",
        "",
        "## Data",
        f"- source: `{card['source']}` (fingerprint `{card['fingerprint'][:16]}`)",
        f"- windows: train {windows['train_start'][:10]} .. {windows['train_end'][:10]}"
        f" ({windows['train_days']} d), delay {windows['delay_days']} d, "
        f"test {windows['test_start'][:10]} .. {windows['test_end'][:10]}"
        f" ({windows['test_days']} d)",
        f"- rows: train {rows['train']:,}, test {rows['test']:,}; "
        f"fraud rate train {rate['train']:.4%}, test {rate['test']:.4%}",
        f"- features: {len(card['features'])} (feature set `{card['feature_set_id']}`)",
        "",
        "## Test metrics",
        "| metric | value |",
        "|---|---|",
        f"| ROC AUC | {_fmt(metrics['roc_auc'])} |",
        f"| average precision | {_fmt(metrics['average_precision'])} |",
        f"| card precision@100 (mean per day) | {_fmt(metrics['card_precision_at_100'])} |",
        f"| precision at review threshold | {_fmt(at.get('precision', float('nan')))} |",
        f"| recall at review threshold | {_fmt(at.get('recall', float('nan')))} |",
        f"| Brier score | {_fmt(metrics['calibration']['brier'])} |",
        f"| expected calibration error | {_fmt(metrics['calibration']['ece'])} |",
        "",
        "## Policy",
        f"- review if score >= {card['policy']['review_threshold']:.5f} "
        f"(target review rate {card['policy']['review_rate']:.3%})",
        f"- decline if score >= {card['policy']['decline_threshold']:.5f}",
        *(
            [f"- fitted on {card['policy']['fitted_on']}"]
            if card["policy"].get("fitted_on")
            else []
        ),
        "",
        "## Training",
        f"- rounds {card['best_iteration']}, validation AP {_fmt(card['validation_ap'])}, "
        f"training time {card['training_seconds']:.1f} s, git `{card['git_revision']}`",
        f"- ONNX parity: max |diff| {card['onnx_max_abs_diff']:.2e} over {rows['test']:,} rows",
        f"- params: `{ {k: v for k, v in card['params'].items() if k != 'verbose'} }`",
    ]
    if card.get("warnings"):
        lines += ["", "## Warnings", *[f"- {w}" for w in card["warnings"]]]
    lines += ["", "## Features", ", ".join(f"`{n}`" for n in card["features"]), ""]
    return "\n".join(lines)
