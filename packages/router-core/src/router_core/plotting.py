"""PNG of a training history (loss and accuracy per epoch, on the training and selection battles), drawn by the pipeline next to a
saved model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PLOT_FILE = "training.png"


def save_history_plot(history: Sequence[dict[str, float]], path: Path, title: str = "") -> bool:
    """Draw loss and accuracy curves into `path`; returns False when there is nothing to draw or no matplotlib
    (an optional dependency, installed with router-neural)."""
    if not history:
        return False
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg", force=True)  # files only, never a window
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    try:
        for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
            for split, style in (("train", "-"), ("selection", "--")):
                values = [h.get(f"{split}_{metric}", float("nan")) for h in history]
                ax.plot(epochs, values, style, marker="o", markersize=3, label=split)
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend()
        best = [h["epoch"] for h in history if h.get("best")]
        if best:
            for ax in axes:
                ax.axvline(best[-1], color="grey", linewidth=0.8)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return True
