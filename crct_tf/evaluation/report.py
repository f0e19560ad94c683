"""Scores several methods on 300-VW and reports them: printed tables, results.json, plots.

`evaluate` gathers per-frame values (NME, or IoU with boxes) per method and per group of videos
("cat1".."cat3", "all"); `summarize` turns them into the results.json structure
`{"methods": {NAME: {"all": {...}, "cat1": {...}}}}`; `format_tables` prints them; and
`write_outputs` writes results.json, ced*.png or success*.png atomically.

Several ground truths (annotation folders, e.g. 2D `annot` and 3DA-2D `annot2`, the paper's
Tables II and III) are scored by `evaluate_variants`; `format_paper_table` prints each in the
paper's layout (method x category x AUC/FR) and `write_variant_outputs` writes one results.json
keyed by variant, `{"variants": {"annot": {...}, "annot2": {...}}}`, and each variant's plots
(and its single-variant results.json) into a subfolder named after it.
"""

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from crct_tf.evaluation import metrics, plots, vw300_results
from crct_tf.evaluation.vw300_results import EvaluationError

LANDMARKS, BOXES = "landmarks", "boxes"
# Titles of the known 300-VW annotation folders (the paper's Tables II and III).
VARIANT_KINDS = {"annot": "2D", "annot2": "3DA-2D"}


@dataclasses.dataclass
class Evaluation:
    """Per-frame values of every method, grouped by video category."""
    kind: str          # LANDMARKS (values are NME, inf = failure) or BOXES (values are IoU)
    groups: dict       # {group: [video ids]} of the prediction folders; "all" last
    values: dict       # {method: {group: float64 [frames]}}
    mismatches: dict   # {method: vw300_results.Mismatches} for the prediction folders


def method_names(pred_dirs, errors_txt):
    """Names of the methods: pred folder basenames, then errors-file stems; must be unique."""
    names = [Path(p).resolve().name for p in pred_dirs] + [vw300_results.errors_txt_stem(p) for p in errors_txt]
    paths = [Path(p).resolve() for p in list(pred_dirs) + list(errors_txt)]
    for i, name in enumerate(names):
        if names.count(name) > 1:          # runs/a/preds vs runs/b/preds -> a/preds, b/preds
            names[i] = f"{paths[i].parent.name}/{name}"
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EvaluationError(f"two inputs give the same method name {duplicates[0]!r}: rename "
                              "one folder or file")
    return names


def evaluate(pred_dirs=(), gt_dir=None, categories=None, annot_dir="annot", errors_txt=(),
             boxes=False, pred_annot_dir=None):
    """Scores prediction folders against ground truth, and/or per-frame error files.

    Args:
      pred_dirs: tracker output folders (`NNN/<annot_dir>/*.pts`, or `NNN.csv` with `boxes`).
      gt_dir: the 300-VW-layout ground-truth root (required with `pred_dirs`).
      categories: None (every ground-truth video) or test categories to restrict to, e.g. (1, 3).
      annot_dir: annotation subfolder name of the ground truth (and of the predictions, unless
        `pred_annot_dir` is given).
      errors_txt: files of per-frame NME, one a line; reported under "all" only.
      boxes: score CSV boxes (IoU, OPE success) instead of `.pts` landmarks (NME, CED).
      pred_annot_dir: the predictions' subfolder when it differs from `annot_dir` (the tracker
        writes `NNN/annot/`, scored against `annot2/` 3DA-2D ground truth).

    Returns:
      An `Evaluation`.

    Raises:
      EvaluationError, PtsError: bad input; the message is one line naming the file or folder.
    """
    if not pred_dirs and not errors_txt:
        raise EvaluationError("nothing to evaluate: give --pred_dir or --errors_txt")
    if pred_dirs and not gt_dir:
        raise EvaluationError("--gt_dir is required with --pred_dir")
    if boxes and (errors_txt or not pred_dirs):
        raise EvaluationError("--boxes scores --pred_dir CSV boxes; it takes no --errors_txt")
    names = method_names(pred_dirs, errors_txt)
    groups, values, mismatches = {"all": []}, {}, {}
    if pred_dirs:
        truth = vw300_results.read_ground_truth(gt_dir, annot_dir, categories)
        groups = vw300_results.category_groups(list(truth), categories)
        for name, pred_dir in zip(names, pred_dirs):
            if boxes:
                per_video, mismatches[name] = vw300_results.box_ious(name, pred_dir, truth)
            else:
                per_video, mismatches[name] = vw300_results.landmark_errors(
                    name, pred_dir, truth, pred_annot_dir or annot_dir)
            values[name] = {group: np.concatenate([per_video[v] for v in videos])
                            for group, videos in groups.items()}
    for name, path in zip(names[len(pred_dirs):], errors_txt):
        values[name] = {"all": vw300_results.read_errors_txt(path)}
    return Evaluation(BOXES if boxes else LANDMARKS, groups, values, mismatches)


def summarize(evaluation):
    """The results.json content: AUC as a fraction, FR in percent (or success AUC with boxes)."""
    summary = metrics.summarize_ious if evaluation.kind == BOXES else metrics.summarize_errors
    methods = {name: {group: summary(v) for group, v in by_group.items()}
               for name, by_group in evaluation.values.items()}
    return {
        "methods": methods,
        "mismatches": {name: dataclasses.asdict(m) for name, m in evaluation.mismatches.items()},
        "protocol": {
            "kind": evaluation.kind,
            "nme": "mean 68-point error / diagonal of the ground-truth landmark box",
            "ced_max": metrics.NME_FAILURE_THRESHOLD,
            "ced_step": metrics.CED_STEP,
            "auc": "trapezoid rule over the CED sampled at 0:ced_step:ced_max, / ced_max",
            "fr": "percent of frames with NME > ced_max; frames without prediction fail",
            "success_auc": "mean of the OPE success curve (IoU > t, t = 0:0.05:1)",
        },
        "groups": {group: videos for group, videos in evaluation.groups.items()},
    }


def _group_title(group, evaluation):
    count = len(evaluation.groups.get(group, []))
    videos = f"{count} video{'' if count == 1 else 's'}"
    if group == "all":
        return f"all ({videos})" if count else "all"
    return f"300-VW category {group[3:]} ({videos})"


def format_tables(evaluation, summary=None):
    """One plain-text table per group (categories first, then "all"): method x figures.

    Args:
      evaluation: an `Evaluation`.
      summary: its `summarize` output, if already computed.
    """
    results = (summary or summarize(evaluation))["methods"]
    if evaluation.kind == BOXES:
        columns = [("success AUC", "success_auc", "{:.4f}"), ("mean IoU", "iou_mean", "{:.4f}")]
    else:
        columns = [("AUC", "auc", "{:.4f}"), ("FR(%)", "fr", "{:.2f}"),
                   ("NME mean", "nme_mean", "{:.4f}")]
    columns += [("frames", "frames", "{:d}"), ("missing", "missing", "{:d}")]
    width = max([len("method")] + [len(n) for n in results]) + 2
    lines = []
    for group in evaluation.groups:
        rows = [(name, r[group]) for name, r in results.items() if group in r]
        if not rows:
            continue
        lines += ["", f"== {_group_title(group, evaluation)} =="]
        lines.append("method".ljust(width) + "".join(f"{h:>13}" for h, _, _ in columns))
        for name, cell in rows:
            figures = ["-" if cell[key] is None else fmt.format(cell[key])
                       for _, key, fmt in columns]
            lines.append(name.ljust(width) + "".join(f"{f:>13}" for f in figures))
    return "\n".join(lines).lstrip("\n")


# --------------------------------------------------------------------------------------------
# Several ground truths side by side (Tables II and III).
# --------------------------------------------------------------------------------------------

def variant_title(annot_dir):
    """"2D (annot)", "3DA-2D (annot2)", or the folder name for other annotation folders."""
    kind = VARIANT_KINDS.get(annot_dir)
    return f"{kind} ({annot_dir})" if kind else annot_dir


def evaluate_variants(pred_dirs, gt_dir, annot_dirs, categories=None, pred_annot_dir=None):
    """Scores the same prediction folders against several ground truths (annotation folders).

    Args:
      pred_dirs: tracker output folders.
      gt_dir: the 300-VW-layout ground-truth root holding every `NNN/<annot_dir>/`.
      annot_dirs: two or more annotation folders, e.g. ("annot", "annot2").
      categories: as in `evaluate`.
      pred_annot_dir: the predictions' subfolder for every variant (default: each variant's
        own `annot_dir`).

    Returns:
      {annot_dir: Evaluation}, in the order given. Everything is read before anything is
      written, so bad input leaves no output.
    """
    duplicates = sorted({a for a in annot_dirs if list(annot_dirs).count(a) > 1})
    if duplicates:
        raise EvaluationError(f"--annot_dir {duplicates[0]} given twice")
    if not pred_dirs:
        raise EvaluationError("several --annot_dir need --pred_dir folders to score")
    return {annot_dir: evaluate(pred_dirs, gt_dir, categories, annot_dir,
                                pred_annot_dir=pred_annot_dir)
            for annot_dir in annot_dirs}


def format_paper_table(evaluation, summary=None, title=None):
    """The paper's Table II / III layout: one row per method, AUC and FR(%) per group.

    Args:
      evaluation: a landmark `Evaluation`.
      summary: its `summarize` output, if already computed.
      title: the table's heading, e.g. "3DA-2D (annot2)".
    """
    results = (summary or summarize(evaluation))["methods"]
    groups = [g for g in evaluation.groups if any(g in r for r in results.values())]
    width = max([len("method")] + [len(n) for n in results]) + 2
    cell = 16

    def heading(group):
        count = len(evaluation.groups[group])
        name = "all" if group == "all" else f"category {group[3:]}"
        return f"{name} ({count})"

    lines = [f"== {title} =="] if title else []
    lines.append("".ljust(width) + "".join(f"{heading(g):>{cell}}" for g in groups))
    lines.append("method".ljust(width) + "".join(f"{'AUC    FR(%)':>{cell}}" for _ in groups))
    for name, by_group in results.items():
        cells = []
        for group in groups:
            figures = by_group.get(group)
            cells.append("-" if figures is None or figures["auc"] is None else
                         f"{figures['auc']:.3f} {figures['fr']:7.2f}")
        lines.append(name.ljust(width) + "".join(f"{c:>{cell}}" for c in cells))
    return "\n".join(lines)


def write_variant_outputs(evaluations, output_dir, summaries=None):
    """Writes each variant's outputs into `output_dir/<annot_dir>/`, then `output_dir/
    results.json` keyed by variant; returns the written paths."""
    summaries = summaries or {a: summarize(e) for a, e in evaluations.items()}
    written = []
    for annot_dir, evaluation in evaluations.items():
        folder = Path(output_dir) / annot_dir
        prepare_output_dir(folder)
        written += write_outputs(evaluation, folder, summaries[annot_dir])
    path = Path(output_dir) / "results.json"
    write_json_atomically(path, {"variants": {a: dict(summaries[a], title=variant_title(a))
                                              for a in evaluations}})
    return written + [path]


def prepare_output_dir(path):
    """Creates the output folder and proves it is writable (EvaluationError otherwise)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test"):
            pass
    except OSError as e:
        raise EvaluationError(f"--output_dir {path}: cannot write there ({e.strerror or e})") \
            from None


def write_json_atomically(path, content):
    """Writes JSON to a temporary file beside `path`, then renames it over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_outputs(evaluation, output_dir, summary=None):
    """Writes the plots (one per group) and then results.json; returns the written paths."""
    output_dir = Path(output_dir)
    written = []
    for group in evaluation.groups:
        curves = {name: by_group[group] for name, by_group in evaluation.values.items()
                  if group in by_group}
        if not curves:
            continue
        suffix = "" if group == "all" else f"_{group}"
        title = _group_title(group, evaluation)
        if evaluation.kind == BOXES:
            path = output_dir / f"success{suffix}.png"
            plots.plot_success(curves, path, title=f"OPE success plot: {title}")
        else:
            path = output_dir / f"ced{suffix}.png"
            plots.plot_ced(curves, path, title=f"CED: {title}")
        written.append(path)
    path = output_dir / "results.json"
    write_json_atomically(path, summary or summarize(evaluation))
    return written + [path]
