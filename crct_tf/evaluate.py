r"""Scores tracker outputs on 300-VW as in the paper's Tables I and II.

Landmarks (Table II): per-frame NME, CED up to 0.08, AUC and failure rate per test category:

  python -m crct_tf.evaluate --pred_dir preds/CRCT_2 --pred_dir preds/FLL_MT \
      --gt_dir /data/300VW --output_dir outputs/eval_table2

Box tracking (Table I / Fig. 3): IoU of the `track_video` CSV boxes, OPE success plot and AUC:

  python -m crct_tf.evaluate --boxes --pred_dir preds/BT_seq2 --gt_dir /data/300VW \
      --output_dir outputs/eval_table1

3DA-2D landmarks (Table III): the 3DA-2D ground truth is in NNN/annot2/ of the 300-VW copy; the
tracker writes its predictions to NNN/annot/, so name that folder with --pred_annot_dir:

  python -m crct_tf.evaluate --pred_dir preds/CRCT_2_3D --gt_dir /data/300VW \
      --annot_dir annot2 --pred_annot_dir annot --output_dir outputs/eval_table3

Both ground truths side by side (one Table II / III layout table per annotation folder, titled
"2D (annot)" and "3DA-2D (annot2)"; results.json keyed by variant, plots per variant in
OUTPUT_DIR/annot/ and OUTPUT_DIR/annot2/):

  python -m crct_tf.evaluate --pred_dir preds/CRCT_2 --gt_dir /data/300VW \
      --annot_dir annot --annot_dir annot2 --pred_annot_dir annot --output_dir outputs/eval_both

Per-frame error files (one NME a line) can be added or scored alone with --errors_txt.
Prints one table per category and writes results.json and ced*.png (success*.png with --boxes)
into --output_dir. Bad input: one line on stderr and exit code 2.
"""

import sys

from absl import app, flags, logging

from crct_tf import absl_command
from crct_tf.evaluation import report
from crct_tf.evaluation.vw300_categories import VW300_TEST_CATEGORIES
from crct_tf.geometry.landmarks import PtsError

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("pred_dir", [], "Predictions of one method (repeatable): 300-VW "
                          "layout NNN/<annot_dir>/*.pts, or NNN.csv track files with --boxes. "
                          "The method is named after the folder.")
flags.DEFINE_string("gt_dir", None, "300-VW ground truth root: NNN/<annot_dir>/*.pts.")
flags.DEFINE_string("output_dir", "outputs/evaluation", "Where results.json and the plots go.")
flags.DEFINE_list("categories", None, "300-VW test categories to evaluate, e.g. 1,2,3 "
                  "(default: every ground-truth video present).")
flags.DEFINE_multi_string("annot_dir", ["annot"], "Annotation subfolder of each video: annot "
                          "(2D), annot2 (3DA-2D). Repeat it to print one table per ground truth "
                          "(results.json is then keyed by variant).")
flags.DEFINE_string("pred_annot_dir", None, "Subfolder of each prediction video holding the "
                    ".pts files (default: the --annot_dir being scored). The tracker writes "
                    "NNN/annot/: pass --pred_annot_dir annot to score it against annot2.")
flags.DEFINE_multi_string("errors_txt", [], "File of per-frame NME, one a line, plain or "
                          "gzip (.gz) (repeatable); the method is named after the file name "
                          "without .txt/.gz; reported under 'all'.")
flags.DEFINE_bool("boxes", False, "Score the boxes of track_video CSVs (IoU, OPE success) "
                  "instead of .pts landmarks.")


def _parse_categories(values):
    if values is None:
        return None
    try:
        categories = sorted({int(v) for v in values})
    except ValueError:
        categories = [None]
    if not categories or any(c not in VW300_TEST_CATEGORIES for c in categories):
        raise report.EvaluationError(f"--categories {','.join(values)}: expected a list of 1, 2, 3")
    return categories


def _evaluate_variants(categories):
    """Several --annot_dir: one paper-layout table per ground truth, outputs keyed by variant."""
    if FLAGS.errors_txt or FLAGS.boxes:
        raise report.EvaluationError("several --annot_dir score .pts landmarks only: no "
                                     "--errors_txt or --boxes with them")
    evaluations = report.evaluate_variants(FLAGS.pred_dir, FLAGS.gt_dir, FLAGS.annot_dir,
                                           categories, FLAGS.pred_annot_dir)
    summaries = {a: report.summarize(e) for a, e in evaluations.items()}
    tables = [report.format_paper_table(e, summaries[a], report.variant_title(a))
              for a, e in evaluations.items()]
    print("\n\n".join(tables), flush=True)
    return report.write_variant_outputs(evaluations, FLAGS.output_dir, summaries)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        categories = _parse_categories(FLAGS.categories)
        report.prepare_output_dir(FLAGS.output_dir)
        if len(FLAGS.annot_dir) > 1:
            written = _evaluate_variants(categories)
        else:
            evaluation = report.evaluate(FLAGS.pred_dir, FLAGS.gt_dir, categories,
                                         FLAGS.annot_dir[0], FLAGS.errors_txt, FLAGS.boxes,
                                         FLAGS.pred_annot_dir)
            summary = report.summarize(evaluation)
            print(report.format_tables(evaluation, summary), flush=True)
            written = report.write_outputs(evaluation, FLAGS.output_dir, summary)
        for path in written:
            logging.info("wrote %s", path)
    except (report.EvaluationError, PtsError, OSError) as e:
        message = " ".join(str(e).split())   # one line, whatever the exception held
        sys.stderr.write(f"crct_tf.evaluate: error: {message}\n")
        sys.exit(2)


if __name__ == "__main__":
    absl_command.run(main, "crct_tf.evaluate")
