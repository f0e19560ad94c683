#!/usr/bin/env bash
# Reproduces the CRCT paper's Tables I, II and III (Aspandi et al., FG 2019) from the datasets.
#
# Who this is for: someone who holds 300-VW, 300-W and Menpo (2D) and a GPU; Table III also needs
# their 3D-aware 2D (3DA-2D) labels (docs/datasets.md, "3DA-2D labels"). Training takes days
# (the paper: 2-3 days per BT sequence length and about 2 days for FLL and FV on two Tesla GPUs);
# tracking the 64 test videos takes a few hours per tracker; evaluation takes minutes.
#
# Usage (from a checkout with the package installed: pip install -e .):
#   export VW300_DIR=/data/300VW        # NNN/vid.avi and NNN/annot/000001.pts ...
#   export IBUG300W_DIR=/data/300W      # the 300-W images and .pts files
#   export MENPO_DIR=/data/menpo2d      # Menpo 2D training images and .pts files
#   tools/reproduce_paper.sh [prepare|train|export|track|evaluate|all]   # default: all
#
# Table III (3DA-2D landmarks), once the 3DA-2D labels are in place (docs/datasets.md): 300-VW's in
# $VW300_DIR/NNN/annot2/, 300-W's and Menpo's as <stem>_3d.pts beside the images:
#   tools/reproduce_paper.sh [prepare_3d|train_3d|export_3d|track_3d|evaluate_3d|table3]
#
# Optional variables:
#   WORK_DIR      where runs/, bundles/, preds/ and results/ go (default: outputs/reproduce)
#   TFDS_DIR      TFDS data_dir of the prepared datasets (default: $WORK_DIR/tensorflow_datasets)
#   SEQ_LENGTHS   BT sequence lengths to train and track (default: "2 4 8 16 32")
#   IJCV_ERRORS   folder of the per-frame errors released by Chrysos et al. (IJCV 2018), which add
#                 the ME_CFSS reference row to Table II (default: the repository's copy,
#                 tests/data/ijcv2018_errors; set it to "" to leave the row out)
#   IBUG300W_3D_DIR, MENPO_3D_DIR   where the 300-W / Menpo images with <stem>_3d.pts labels are
#                 (default: IBUG300W_DIR, MENPO_DIR)
#   TRAIN_FLAGS   extra flags for every `python -m crct_tf.train` run, after the config's (so they
#                 win), e.g. "--steps=2 --steps_per_stage=1 --batch_size=2 --backbone=tiny": a dry
#                 run of the whole recipe in minutes on a tiny generated tree, as
#                 tests/test_reproduce_paper.py does
#   TRACK_FLAGS   extra flags for every `python -m crct_tf.track` run, e.g. "--runtime tf"
#
# Each stage skips nothing and overwrites its own outputs; run the stages one by one to resume.
# "all" runs Tables I and II; "table3" runs the five *_3d stages.

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
IBUG300W_3D_DIR="${IBUG300W_3D_DIR:-$IBUG300W_DIR}"
MENPO_3D_DIR="${MENPO_3D_DIR:-$MENPO_DIR}"
IJCV_ERRORS="${IJCV_ERRORS-tests/data/ijcv2018_errors}"
STAGE="${1:-all}"
read -r -a TRAIN_EXTRA <<< "${TRAIN_FLAGS:-}"
read -r -a TRACK_EXTRA <<< "${TRACK_FLAGS:-}"
mkdir -p "$WORK_DIR"

# The 64 test videos of 300-VW categories 1, 2 and 3.
TEST_VIDEOS=$(python -c "from crct_tf.evaluation.vw300_categories import VW300_TEST_IDS as v; \
print(' '.join(v))")

# The ground-truth landmark box of a video's first frame, "x0,y0,x1,y1" (0-based pixels): every
# tracker starts from it, as in the paper ("all trackers are initialized with ... the ground truth").
gt_box() {   # gt_box VIDEO [ANNOT_DIR]: annot (2D, default) or annot2 (3DA-2D)
  python -c "import sys; from crct_tf.geometry.landmarks import read_pts, box_from_landmarks; \
print(','.join(f'{v:.2f}' for v in box_from_landmarks(read_pts(sys.argv[1]))))" \
    "$VW300_DIR/$1/${2:-annot}/000001.pts"
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
  local common=(--data_dir "$TFDS_DIR" ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"})
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
track_all() {   # track_all NAME MODE BUNDLE [ANNOT_DIR]: the test videos that have ANNOT_DIR/
  local name=$1 mode=$2 bundle=$3 annot=${4:-annot} v skipped=()
  for v in $TEST_VIDEOS; do
    if [[ ! -d "$VW300_DIR/$v/$annot" ]]; then skipped+=("$v"); continue; fi
    python -m crct_tf.track --input "$VW300_DIR/$v/vid.avi" --weights "$bundle" \
      --mode "$mode" --init_box "$(gt_box "$v" "$annot")" --save_pts --no_video --overwrite \
      --output_dir "$WORK_DIR/preds/$name" ${TRACK_EXTRA[@]+"${TRACK_EXTRA[@]}"}
  done
  if (( ${#skipped[@]} )); then
    echo "reproduce_paper.sh: $name: ${#skipped[@]} test videos without $annot/ not tracked:" \
         "${skipped[*]}" >&2
  fi
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
add_landmarks() {   # add_landmarks ARRAY NAME: appends --pred_dir preds/NAME to ARRAY, unless
  local -n list=$1  # that tracker wrote no landmarks at all (then says so)
  local dir="$WORK_DIR/preds/$2"
  if compgen -G "$dir/*/annot/*.pts" > /dev/null; then
    list+=(--pred_dir "$dir")
  else
    echo "reproduce_paper.sh: $2 tracked no frame (no $dir/*/annot/*.pts); left out" >&2
  fi
}

evaluate() {
  local n table1=() table2=() reference=()
  for n in $SEQ_LENGTHS; do
    table1+=(--pred_dir "$WORK_DIR/preds/BT_$n")
    add_landmarks table2 "CRCT_$n"
  done
  add_landmarks table2 FLL_MT
  if [[ -n "${IJCV_ERRORS:-}" ]]; then       # ME_CFSS, reported under "all" per file
    for n in 1 2 3; do                       # the repository keeps them gzipped (.txt.gz)
      local errors="$IJCV_ERRORS/tracking_meem_cfss_category$n.txt"
      if [[ -f "$errors.gz" ]]; then errors="$errors.gz"; fi
      reference+=(--errors_txt "$errors")
    done
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

# =============================================================================================
# Table III: 3DA-2D landmark tracking (paper IV-C). The same five stages on the 3D-aware 2D
# labels: vw300/3da2d reads NNN/annot2/ (the 3DA-2D videos are a subset of 300-VW: videos
# without annot2/ are skipped with a warning), ibug300w/3da2d and menpo2d/3da2d read
# <stem>_3d.pts beside the images (tools/convert_ls3dw.py writes them from LS3D-W / 300W-LP .mat).
# =============================================================================================
prepare_3d() {
  python -m crct_tf.datasets.build vw300 --config 3da2d --manual_dir "$VW300_DIR" \
    --data_dir "$TFDS_DIR"
  python -m crct_tf.datasets.build ibug300w --config 3da2d --manual_dir "$IBUG300W_3D_DIR" \
    --data_dir "$TFDS_DIR"
  python -m crct_tf.datasets.build menpo2d --config 3da2d --manual_dir "$MENPO_3D_DIR" \
    --data_dir "$TFDS_DIR"
}

train_3d() {    # configs/*_3d.cfg: FLL and FV on 3DA-2D images, BT on the annot2/ videos
  local common=(--data_dir "$TFDS_DIR" ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"})
  python -m crct_tf.train --flagfile=configs/fll_3d.cfg "${common[@]}" \
    --manual_dir "$IBUG300W_3D_DIR,$MENPO_3D_DIR" --model_dir "$WORK_DIR/runs/fll_3d"
  python -m crct_tf.train --flagfile=configs/fv_3d.cfg "${common[@]}" \
    --manual_dir "$IBUG300W_3D_DIR,$MENPO_3D_DIR" --model_dir "$WORK_DIR/runs/fv_3d"
  for n in $SEQ_LENGTHS; do
    python -m crct_tf.train --flagfile="configs/bt_seq${n}_3d.cfg" "${common[@]}" \
      --manual_dir "$VW300_DIR" --init_from "$WORK_DIR/runs/fll_3d" \
      --model_dir "$WORK_DIR/runs/bt_seq${n}_3d"
  done
}

export_3d() {
  for n in $SEQ_LENGTHS; do
    python -m crct_tf.export --format bundle --model_dir "$WORK_DIR/runs/fll_3d" \
      --model_dir "$WORK_DIR/runs/fv_3d" --model_dir "$WORK_DIR/runs/bt_seq${n}_3d" \
      --export_dir "$WORK_DIR/bundles/crct_${n}_3d"
  done
}

track_3d() {    # the test videos with annot2/, started from their first 3DA-2D box
  for n in $SEQ_LENGTHS; do
    track_all "CRCT_${n}_3D" crct "$WORK_DIR/bundles/crct_${n}_3d" annot2
  done
  local first
  first=$(echo "$SEQ_LENGTHS" | awk '{print $1}')
  track_all FLL_MT_3D fll_mt "$WORK_DIR/bundles/crct_${first}_3d" annot2
}

evaluate_3d() {
  local n table3=()
  for n in $SEQ_LENGTHS; do add_landmarks table3 "CRCT_${n}_3D"; done
  add_landmarks table3 FLL_MT_3D
  # Table III: AUC (NME <= 0.08) / FR % per category against NNN/annot2/; the tracker wrote its
  # predictions to NNN/annot/, hence --pred_annot_dir annot.
  #                 category 1      category 2      category 3
  #   CRCT_2_3D     0.760 / 0.09    0.772 / 0.20    0.605 / 9.97
  #   CRCT_4_3D     0.760 / 0.14    0.772 / 0.19    0.603 / 10.0
  #   CRCT_8_3D     0.758 / 0.34    0.773 / 0.20    0.603 / 10.2
  #   CRCT_16_3D    0.750 / 1.36    0.771 / 0.22    0.604 / 10.3
  #   CRCT_32_3D    0.747 / 1.72    0.770 / 0.21    0.596 / 10.6
  #   FLL_MT_3D     0.730 / 4.14    0.757 / 0.45    0.603 / 11.5
  # (other trackers, not run here: FA_MD_3D 0.732/1.35, 0.757/0.90, 0.544/14.2; FA_MT_3D
  # 0.706/2.41, 0.722/0.57, 0.566/10.3). Plots: ced_cat*.png (paper Fig. 4).
  python -m crct_tf.evaluate "${table3[@]}" --gt_dir "$VW300_DIR" --annot_dir annot2 \
    --pred_annot_dir annot --categories 1,2,3 --output_dir "$WORK_DIR/results/table3"
}

case "$STAGE" in
  prepare) prepare ;;
  train) train ;;
  export) export_bundles ;;
  track) track ;;
  evaluate) evaluate ;;
  all) prepare; train; export_bundles; track; evaluate ;;
  prepare_3d) prepare_3d ;;
  train_3d) train_3d ;;
  export_3d) export_3d ;;
  track_3d) track_3d ;;
  evaluate_3d) evaluate_3d ;;
  table3) prepare_3d; train_3d; export_3d; track_3d; evaluate_3d ;;
  *) echo "reproduce_paper.sh: unknown stage '$STAGE' (prepare|train|export|track|evaluate|all," \
          "prepare_3d|train_3d|export_3d|track_3d|evaluate_3d|table3)" >&2
     exit 2 ;;
esac
