"""The corpus table: every row of every video's CSV in one Parquet dataset.

`OUT/corpus_table/` holds one Parquet file per video (its relative path quoted, e.g.
`a%2Fb%2Fclip.parquet`), made from the video's final CSV, so the table always agrees with the
CSVs. pandas and pyarrow read the folder as one table:

    pandas.read_parquet("OUT/corpus_table")
    pyarrow.dataset.dataset("OUT/corpus_table").to_table()

Columns: `video` (the relative path without extension), then the CSV's columns in order with
`face_id` third (0 when the CSV has no face_id column): frame, time_s, status, face_score, the
box x0..y1 and the 68 points lx0, ly0, ... ly67 (and any further CSV column). Empty cells
(no box or landmarks on lost frames) are nulls.
"""

import io

INT_COLUMNS = ("frame", "face_id")
STRING_COLUMNS = ("status",)


def csv_to_table(csv_bytes, video):
    """The pyarrow Table of one video's CSV (bytes), with the `video` column first."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    header = csv_bytes.split(b"\n", 1)[0].decode("utf-8").strip().split(",")
    types = {name: (pa.int32() if name in INT_COLUMNS else pa.string()
                    if name in STRING_COLUMNS else pa.float64() if name == "time_s"
                    else pa.float32()) for name in header}
    table = pa_csv.read_csv(
        io.BytesIO(csv_bytes),
        convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                               null_values=[""]))
    if "face_id" not in table.column_names:
        table = table.add_column(1, "face_id", pa.array([0] * table.num_rows, pa.int32()))
    else:
        column = table.column("face_id")
        table = table.remove_column(table.column_names.index("face_id"))
        table = table.add_column(1, "face_id", column)
    return table.add_column(0, "video", pa.array([video] * table.num_rows, pa.string()))


def table_bytes(csv_bytes, video):
    """One video's Parquet file as bytes (written atomically by the caller)."""
    import pyarrow.parquet as pq
    sink = io.BytesIO()
    pq.write_table(csv_to_table(csv_bytes, video), sink, compression="zstd")
    return sink.getvalue()
