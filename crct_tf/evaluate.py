r"""Scores tracker outputs on 300-VW as in the paper's Tables I and II (SPEC section 5).

Landmarks (Table II): per-frame NME, CED up to 0.08, AUC and failure rate per test category:

  python -m crct_tf.evaluate --pred_dir preds/CRCT_2 --pred_dir preds/FLL_MT \
      --gt_dir /data/300VW --output_dir outputs/eval_table2

Box tracking (Table I / Fig. 3): IoU of the `track_video` CSV boxes, OPE success plot and AUC:

  python -m crct_tf.evaluate --boxes --pred_dir preds/BT_seq2 --gt_dir /data/300VW \
      --output_dir outputs/eval_table1

Per-frame error files (one NME a line) can be added or scored alone with --errors_txt.
Prints one table per category and writes results.json and ced*.png (success*.png with --boxes)
into --output_dir. Bad input: one line on stderr and exit code 2.
"""

import sys

from absl import app, flags, logging

from crct_tf.evaluation import report
from crct_tf.evaluation.vw300_categories import VW300_TEST_CATEGORIES
from crct_tf.landmarks import PtsError

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("pred_dir", [], "Predictions of one method (repeatable): 300-VW "
                          "layout NNN/<annot_dir>/*.pts, or NNN.csv track files with --boxes. "
                          "The method is named after the folder.")
flags.DEFINE_string("gt_dir", None, "300-VW ground truth root: NNN/<annot_dir>/*.pts.")
flags.DEFINE_string("output_dir", "outputs/evaluation", "Where results.json and the plots go.")
flags.DEFINE_list("categories", None, "300-VW test categories to evaluate, e.g. 1,2,3 "
                  "(default: every ground-truth video present).")
flags.DEFINE_string("annot_dir", "annot", "Annotation subfolder of each video.")
flags.DEFINE_multi_string("errors_txt", [], "File of per-frame NME, one a line (repeatable); "
                          "the method is named after the file stem; reported under 'all'.")
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        categories = _parse_categories(FLAGS.categories)
        report.prepare_output_dir(FLAGS.output_dir)
        evaluation = report.evaluate(FLAGS.pred_dir, FLAGS.gt_dir, categories, FLAGS.annot_dir,
                                     FLAGS.errors_txt, FLAGS.boxes)
        summary = report.summarize(evaluation)
        print(report.format_tables(evaluation, summary), flush=True)
        for path in report.write_outputs(evaluation, FLAGS.output_dir, summary):
            logging.info("wrote %s", path)
    except (report.EvaluationError, PtsError, OSError) as e:
        message = " ".join(str(e).split())   # one line, whatever the exception held
        sys.stderr.write(f"crct_tf.evaluate: error: {message}\n")
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
