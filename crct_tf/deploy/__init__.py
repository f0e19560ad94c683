"""Conversions of trained networks for deployment.

    tflite.py   BT, FV and FLL as TFLite / LiteRT models (fp32, fp16, dynamic-range, int8)

The SavedModel is written by `crct_tf.tracking.frame_step.FrameSteps` itself (a tf.Module).
"""
