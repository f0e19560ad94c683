"""Geometry shared by training, tracking and export.

    landmarks.py      the iBUG 68-point scheme, `.pts` files, boxes from landmarks (eq. 4)
    cropping.py       crop windows, point maps and crops in numpy / OpenCV
    tf_cropping.py    the same crops as TensorFlow ops (sampling at the same positions)
    crop_settings.py  the crop constants each sub-network is trained and run with

Nothing here imports from the rest of the package; only `tf_cropping` imports TensorFlow.
"""
