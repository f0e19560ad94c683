#!/usr/bin/env bash
# Reproduces the CRCT paper's Tables I and II (Aspandi et al., FG 2019) from the datasets.
#
# Who this is for: someone who holds 300-VW, 300-W and Menpo (2D) and a GPU. Training takes days
# (the paper: 2-3 days per BT sequence length and about 2 days for FLL and FV on two Tesla GPUs);
# tracking the 64 test videos takes a few hours per tracker; evaluation takes minutes.
#
# Usage (from a checkout with the package installed: pip install -e .):
#   export VW300_DIR=/data/300VW        # NNN/vid.avi and NNN/annot/000001.pts ...
#   export IBUG300W_DIR=/data/300W      # the 300-W images and .pts files
#   export MENPO_DIR=/data/menpo2d      # Menpo 2D training images and .pts files
#   tools/reproduce_paper.sh [prepare|train|export|track|evaluate|all]   # default: all
#
# Optional variables:
#   WORK_DIR      where runs/, bundles/, preds/ and results/ go (default: outputs/reproduce)
#   TFDS_DIR      TFDS data_dir of the prepared datasets (default: $WORK_DIR/tensorflow_datasets)
#   SEQ_LENGTHS   BT sequence lengths to train and track (default: "2 4 8 16 32")
#   IJCV_ERRORS   folder of the per-frame errors released by Chrysos et al. (IJCV 2018); when set,
#                 the ME_CFSS reference row is added to Table II (e.g. ../shared/data/ijcv2018_errors)
#
# Each stage skips nothing and overwrites its own outputs; run the stages one by one to resume.
# Table III (3DA-2D landmarks) is not covered: it needs the 3D-aligned 300-VW annotations.

set -euo pipefail

missing=()
for var in VW300_DIR IBUG300W_DIR MENPO_DIR; do
  if [[ -z "${!var:-}" ]]; then missing+=("$var"); fi
done
if (( ${#missing[@]} )); then
  echo "reproduce_paper.sh: set ${missing[*]} to the dataset folder(s) first (see the header" \
       "of $0)" >&2
  exit 2
fi
for var in VW300_DIR IBUG300W_DIR MENPO_DIR; do
  if [[ ! -d "${!var}" ]]; then
    echo "reproduce_paper.sh: $var=${!var} is not a folder" >&2
    exit 2
  fi
done

cd "$(dirname "$0")/.."                      # the repository root
WORK_DIR="${WORK_DIR:-outputs/reproduce}"
TFDS_DIR="${TFDS_DIR:-$WORK_DIR/tensorflow_datasets}"
SEQ_LENGTHS="${SEQ_LENGTHS:-2 4 8 16 32}"
STAGE="${1:-all}"
mkdir -p "$WORK_DIR"

# The 64 test videos of 300-VW categories 1, 2 and 3.
TEST_VIDEOS=$(python -c "from crct_tf.evaluation.vw300_categories import VW300_TEST_IDS as v; \
print(' '.join(v))")

# The ground-truth landmark box of a video's first frame, "x0,y0,x1,y1" (0-based pixels): every
# tracker starts from it, as in the paper ("all trackers are initialized with ... the ground truth").
gt_box() {
  python -c "import sys; from crct_tf.landmarks import read_pts, box_from_landmarks; \
print(','.join(f'{v:.2f}' for v in box_from_landmarks(read_pts(sys.argv[1]))))" \
    "$VW300_DIR/$1/annot/000001.pts"
}

# ---------------------------------------------------------------------------------------------
# 1. Data preparation: the TFDS builders vw300 (config 2d), ibug300w and menpo2d read the
#    downloaded copies through manual_dir (crct_tf/datasets; equivalent to tfds.builder(NAME)
#    .download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=DIR))).
# ---------------------------------------------------------------------------------------------
prepare() {
  python -m crct_tf.datasets.build vw300 --config 2d --manual_dir "$VW300_DIR" --data_dir "$TFDS_DIR"
  python -m crct_tf.datasets.build ibug300w --manual_dir "$IBUG300W_DIR" --data_dir "$TFDS_DIR"
  python -m crct_tf.datasets.build menpo2d --manual_dir "$MENPO_DIR" --data_dir "$TFDS_DIR"
}

# ---------------------------------------------------------------------------------------------
# 2. Training (configs/*.cfg hold the paper's settings; each file's header gives the time and the
#    result to expect). FLL first: BT's backbone starts from the fine-tuned FLL. Each bt_seqN.cfg
#    runs the whole curriculum 2 -> ... -> N in one --model_dir.
# ---------------------------------------------------------------------------------------------
train() {
  local common=(--data_dir "$TFDS_DIR")
  python -m crct_tf.train --flagfile=configs/fll.cfg "${common[@]}" \
    --manual_dir "$IBUG300W_DIR,$MENPO_DIR" --model_dir "$WORK_DIR/runs/fll"
  python -m crct_tf.train --flagfile=configs/fv.cfg "${common[@]}" \
    --manual_dir "$IBUG300W_DIR,$MENPO_DIR" --model_dir "$WORK_DIR/runs/fv"
  for n in $SEQ_LENGTHS; do
    python -m crct_tf.train --flagfile="configs/bt_seq$n.cfg" "${common[@]}" \
      --manual_dir "$VW300_DIR" --init_from "$WORK_DIR/runs/fll" \
      --model_dir "$WORK_DIR/runs/bt_seq$n"
  done
}

# ---------------------------------------------------------------------------------------------
# 3. Export: one weights bundle per BT sequence length (FLL and FV are shared).
# ---------------------------------------------------------------------------------------------
export_bundles() {
  for n in $SEQ_LENGTHS; do
    python -m crct_tf.export --format bundle --model_dir "$WORK_DIR/runs/fll" \
      --model_dir "$WORK_DIR/runs/fv" --model_dir "$WORK_DIR/runs/bt_seq$n" \
      --export_dir "$WORK_DIR/bundles/crct_$n"
  done
}

# ---------------------------------------------------------------------------------------------
# 4. Tracking every test video. Outputs per tracker T: preds/T/NNN.csv (boxes, Table I) and
#    preds/T/NNN/annot/000001.pts ... (tracked frames only, Table II).
# ---------------------------------------------------------------------------------------------
track_all() {   # track_all NAME MODE BUNDLE
  local name=$1 mode=$2 bundle=$3 v
  for v in $TEST_VIDEOS; do
    python tools/track_video.py --input "$VW300_DIR/$v/vid.avi" --weights "$bundle" \
      --mode "$mode" --init_box "$(gt_box "$v")" --save_pts --no_video --overwrite \
      --output_dir "$WORK_DIR/preds/$name"
  done
}

track() {
  for n in $SEQ_LENGTHS; do
    track_all "BT_$n" bt "$WORK_DIR/bundles/crct_$n"        # Table I: BT alone, rigid boxes
    track_all "CRCT_$n" crct "$WORK_DIR/bundles/crct_$n"    # Table II: the full tracker
  done
  local first
  first=$(echo "$SEQ_LENGTHS" | awk '{print $1}')
  track_all FLL_MT fll_mt "$WORK_DIR/bundles/crct_$first"   # Table II: MTCNN + FLL per frame
}

# ---------------------------------------------------------------------------------------------
# 5. Evaluation: tables printed, results.json and plots under results/.
# ---------------------------------------------------------------------------------------------
evaluate() {
  local n table1=() table2=() reference=()
  for n in $SEQ_LENGTHS; do
    table1+=(--pred_dir "$WORK_DIR/preds/BT_$n")
    table2+=(--pred_dir "$WORK_DIR/preds/CRCT_$n")
  done
  table2+=(--pred_dir "$WORK_DIR/preds/FLL_MT")
  if [[ -n "${IJCV_ERRORS:-}" ]]; then       # ME_CFSS, reported under "all" per file
    for n in 1 2 3; do reference+=(--errors_txt "$IJCV_ERRORS/tracking_meem_cfss_category$n.txt"); done
  fi

  # Table I: OPE success AUC over all three categories (row "all" of the printed table).
  # Paper, BT with SeqBT = 2, 4, 8, 16, 32:  0.783  0.784  0.754  0.761  0.705
  # (other trackers: RE_32 0.363, SM_2 0.445, MD 0.616). Plots: success*.png (paper Fig. 3).
  python -m crct_tf.evaluate --boxes "${table1[@]}" --gt_dir "$VW300_DIR" --categories 1,2,3 \
    --output_dir "$WORK_DIR/results/table1"

  # Table II: AUC (NME <= 0.08) / FR % per category (rows cat1, cat2, cat3).
  #                 category 1      category 2      category 3
  #   CRCT_2        0.784 / 0.50    0.790 / 0.05    0.729 / 1.75
  #   CRCT_4        0.778 / 1.01    0.790 / 0.07    0.725 / 1.80
  #   CRCT_8        0.772 / 1.88    0.788 / 0.07    0.725 / 1.91
  #   CRCT_16       0.773 / 1.64    0.787 / 0.07    0.725 / 2.02
  #   CRCT_32       0.769 / 1.79    0.778 / 0.07    0.723 / 1.86
  #   FLL_MT        0.729 / 5.38    0.769 / 2.60    0.691 / 3.39
  #   ME_CFSS [3]   0.758 / 3.56    0.772 / 0.38    0.659 / 11.3   (from $IJCV_ERRORS, one row per
  #                 category under "all"; this implementation gets 0.7581/3.56, 0.7722/0.43,
  #                 0.6587/11.36). Plots: ced_cat*.png (paper Fig. 4).
  python -m crct_tf.evaluate "${table2[@]}" "${reference[@]}" --gt_dir "$VW300_DIR" \
    --categories 1,2,3 --output_dir "$WORK_DIR/results/table2"
}

case "$STAGE" in
  prepare) prepare ;;
  train) train ;;
  export) export_bundles ;;
  track) track ;;
  evaluate) evaluate ;;
  all) prepare; train; export_bundles; track; evaluate ;;
  *) echo "reproduce_paper.sh: unknown stage '$STAGE' (prepare|train|export|track|evaluate|all)" >&2
     exit 2 ;;
esac
