"""Corpus tracking on Apache Beam (`python -m crct_tf.track_corpus`).

    files.py     finding the videos, output paths, completeness, local and remote (Beam) files
    pipeline.py  the Beam pipeline: `TrackVideos`, a DoFn building the tracker once per worker
    driver.py    the plan (what is left to do), the run with its progress bar, the summary
    table.py     the optional Parquet table of every CSV row

How to run it locally and on Flink, Spark and Dataflow: docs/scale_out.md.
"""
