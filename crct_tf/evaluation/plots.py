"""CED and OPE success plots (PNG) with every method overlaid; matplotlib's Agg canvas only.

The figures are drawn on a `matplotlib.figure.Figure` with the Agg canvas directly, so nothing
depends on (or changes) pyplot's global backend, and no display is needed.
"""

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crct_tf.evaluation import metrics


def _save_atomically(figure, path):
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    try:
        FigureCanvasAgg(figure).print_png(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _new_axes(title, xlabel, ylabel):
    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_ylim(0.0, 1.02)           # keep a curve at 1.0 visible above the frame
    axes.grid(True, alpha=0.3)
    return figure, axes


def plot_ced(errors_by_method, path, title="Cumulative error distribution"):
    """Writes the CED curves (NME 0..0.08) of several methods into one PNG.

    Args:
      errors_by_method: {method name: per-frame NME array (inf = failure)}, in legend order.
      path: the PNG file to write (atomically).
      title: the plot title.
    """
    figure, axes = _new_axes(title, "NME (normalised by the ground-truth box diagonal)",
                             "fraction of frames")
    for name, errors in errors_by_method.items():
        thresholds, fractions = metrics.ced_curve(errors)
        label = (f"{name} (AUC {metrics.ced_auc(errors):.3f}, "
                 f"FR {metrics.failure_rate(errors):.2f}%)")
        axes.plot(thresholds, fractions, label=label, linewidth=1.5)
    axes.set_xlim(0.0, metrics.NME_FAILURE_THRESHOLD)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    _save_atomically(figure, path)


def plot_success(ious_by_method, path, title="OPE success plot"):
    """Writes the OPE success curves (IoU thresholds 0..1) of several methods into one PNG.

    Args:
      ious_by_method: {method name: per-frame IoU array (0 = no box)}, in legend order.
      path: the PNG file to write (atomically).
      title: the plot title.
    """
    figure, axes = _new_axes(title, "overlap threshold (IoU)", "success rate")
    for name, ious in ious_by_method.items():
        thresholds, fractions = metrics.success_curve(ious)
        label = f"{name} (AUC {metrics.success_auc(ious):.3f})"
        axes.plot(thresholds, fractions, label=label, linewidth=1.5, marker=".")
    axes.set_xlim(0.0, 1.0)
    axes.set_xticks(np.linspace(0.0, 1.0, 11))
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    _save_atomically(figure, path)
