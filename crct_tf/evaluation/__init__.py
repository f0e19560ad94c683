"""The paper's metrics (NME, CED, AUC, FR, IoU, OPE success) and 300-VW evaluation.

Plain numpy and matplotlib: nothing here imports TensorFlow, so `python -m crct_tf.evaluate`
starts fast. Entry point: `crct_tf/evaluate.py`.
"""

from crct_tf.evaluation.metrics import (CED_STEP, IOU_THRESHOLDS, NME_FAILURE_THRESHOLD,
                                        as_errors, box_iou, ced_auc, ced_curve, ced_thresholds,
                                        failure_rate, nme_box_diagonal, nme_inter_ocular,
                                        success_auc, success_curve, summarize_errors,
                                        summarize_ious)
from crct_tf.evaluation.vw300_categories import (VW300_TEST_CATEGORIES, VW300_TEST_IDS,
                                                 VW300_TRAIN_IDS, category_of)
