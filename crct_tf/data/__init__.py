"""Training data: augmentations, generated faces and the FLL / FV / BT input pipelines.

- `augment`: pure functions on {image, landmarks, box} (stateless random ops).
- `synthetic`: drawn faces with known landmarks (no dataset needed).
- `fll_pipeline`, `fv_pipeline`, `bt_pipeline`: `tf.data` pipelines cropping with `geometry`,
  exactly as the tracker does.
"""
