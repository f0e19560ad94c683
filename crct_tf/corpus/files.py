"""The files of corpus tracking: finding the videos, naming their outputs, checking which are
complete, and moving files between a worker's disk and a remote folder.

Paths are local paths or URLs of a Beam file system (`gs://bucket/dir`, `s3://...`,
`hdfs://...`). Local paths use `os` directly (renames are atomic there); URLs go through
`apache_beam.io.filesystems.FileSystems`, where an object appears only once its upload is
complete. Only Beam itself is imported here (no TensorFlow).
"""

import glob
import os
import shutil
import tempfile
import urllib.parse

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".ts", ".mts", ".m2ts", ".ogv")
GLOB_CHARS = "*?["
RUN_DIR = ".track_corpus"          # per-run bookkeeping under the output folder (hidden)
SUMMARY = "corpus_summary.json"
TABLE_DIR = "corpus_table"


class CorpusError(ValueError):
    """Bad input or output of a corpus run; the message is one line."""


def is_remote(path):
    """Whether `path` is a URL of a Beam file system rather than a local path."""
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.get_scheme(str(path)) not in (None, "file")


def join(root, relative):
    """`root`/`relative` (a '/'-separated relative path) for a local path or a URL."""
    parts = [p for p in relative.split("/") if p]
    if is_remote(root):
        from apache_beam.io.filesystems import FileSystems
        return FileSystems.join(root, *parts) if parts else root
    return os.path.join(root, *parts)


def _has_glob(spec):
    return any(c in spec for c in GLOB_CHARS)


def _glob_base(spec):
    """The folder part of a glob before its first wildcard: relative paths start there."""
    sep = "/" if is_remote(spec) else os.sep
    parts = spec.split(sep)
    for i, part in enumerate(parts):
        if _has_glob(part):
            return sep.join(parts[:i]) or sep
    return sep.join(parts[:-1])


def is_video_name(path):
    return path.lower().endswith(VIDEO_EXTENSIONS) and not os.path.basename(path).startswith(".")


def find_videos(spec, exclude=None):
    """(base, [paths]): the video files of a folder (recursively), a glob, or one file.

    Files and folders whose names start with '.' are left out, and so is `exclude` (the
    output folder, when it lies inside the input folder). Raises CorpusError.
    """
    spec = str(spec)
    if is_remote(spec):
        return _find_remote(spec)
    exclude = os.path.realpath(exclude) if exclude else None
    if _has_glob(spec):
        base = _glob_base(spec)
        paths = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    elif os.path.isfile(spec):
        base, paths = os.path.dirname(spec), [spec]
    elif os.path.isdir(spec):
        base, paths = spec, list(_walk(spec, exclude))
    else:
        raise CorpusError(f"{spec}: no such file or folder")
    paths = [os.path.abspath(p) for p in paths if is_video_name(p) and not (
        exclude and os.path.realpath(p).startswith(exclude + os.sep))]
    return os.path.abspath(base or "."), sorted(paths)


def _walk(folder, exclude):
    seen = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen or real == exclude:        # a link loop, or the output folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith("."):
                yield os.path.join(root, name)


def _find_remote(spec):
    from apache_beam.io.filesystems import FileSystems
    if _has_glob(spec):
        base, pattern = _glob_base(spec), spec
    else:
        exact = [m.path for m in _match(spec)]
        if spec in exact:
            return spec.rsplit("/", 1)[0], [spec] if is_video_name(spec) else []
        base, pattern = spec.rstrip("/"), FileSystems.join(spec.rstrip("/"), "**")
    paths = [m.path for m in _match(pattern) if is_video_name(m.path)]
    if not paths and not _match(base.rstrip("/") + "/*") and not _has_glob(spec):
        raise CorpusError(f"{spec}: no such file or folder")
    return base, sorted(p for p in paths if f"/{RUN_DIR}/" not in p)


def _match(pattern):
    from apache_beam.io.filesystems import FileSystems
    try:
        return FileSystems.match([pattern])[0].metadata_list
    except Exception as e:            # BeamIOError: a bucket that does not exist, no access
        raise CorpusError(f"{pattern}: {' '.join(str(e).split())[:300]}") from None


def relative_stem(path, base):
    """'a/b/clip' for base/a/b/clip.mp4: the outputs' path under the output folder."""
    if is_remote(path):
        rel = path[len(base.rstrip("/")) + 1:] if path.startswith(base.rstrip("/") + "/") \
            else path.rsplit("/", 1)[-1]
    else:
        rel = os.path.relpath(path, base).replace(os.sep, "/")
    return os.path.splitext(rel)[0]


def table_part_name(relative):
    """The Parquet file of one video in the corpus table: its relative path, quoted, flat (a
    folder of parts that pyarrow and pandas read as one dataset)."""
    return urllib.parse.quote(relative, safe="") + ".parquet"


def output_suffixes(video, pts):
    """The outputs of a complete video, as suffixes of OUT/<relative>: S.json is written last,
    S/ is the folder of the .pts files."""
    return [".csv"] + ([".mp4"] if video else []) + ([""] if pts else []) + [".json"]


# What `TrackOutputs` writes before renaming (S.partial.csv, S.partial.mp4, S.partial/).
PARTIAL_SUFFIXES = (".partial.csv", ".partial.mp4", ".partial")


def existing_outputs(output_dir):
    """The set of '/'-separated paths (files and folders) under `output_dir`, read once."""
    found = set()
    if is_remote(output_dir):
        root = output_dir.rstrip("/") + "/"
        for m in _match(root + "**"):
            rel = m.path[len(root):]
            found.add(rel)
            parts = rel.split("/")
            for i in range(1, len(parts)):
                found.add("/".join(parts[:i]))
        return found
    for root, dirs, files in os.walk(output_dir):
        rel_root = os.path.relpath(root, output_dir).replace(os.sep, "/")
        prefix = "" if rel_root == "." else rel_root + "/"
        if prefix.startswith(RUN_DIR + "/") or rel_root == RUN_DIR:
            dirs[:] = []
            continue
        found.update(prefix + n for n in files)
        found.update(prefix + n for n in dirs)
    return found


def check_writable(output_dir):
    """Creates `output_dir` and writes a probe file there; CorpusError naming the problem."""
    try:
        if is_remote(output_dir):
            from apache_beam.io.filesystems import FileSystems
            probe = FileSystems.join(output_dir, f".write_probe_{os.getpid()}")
            with FileSystems.create(probe, compression_type="uncompressed") as f:
                f.write(b"ok")
            FileSystems.delete([probe])
            return
        os.makedirs(output_dir, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_probe_", dir=output_dir)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise CorpusError(f"cannot write into {output_dir}: {e.strerror or e}") from None
    except Exception as e:             # Beam's IO errors for remote folders
        raise CorpusError(f"cannot write into {output_dir}: "
                          f"{' '.join(str(e).split())[:300]}") from None


# -- reading and writing single files (local or remote) --------------------------------------------

def write_bytes_atomic(path, data):
    """Writes `data` to `path` so that it appears complete or not at all."""
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.create(path, compression_type="uncompressed") as f:
            f.write(data)
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read_bytes(path):
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.open(path, compression_type="uncompressed") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def list_files(folder):
    """The paths of the files directly in `folder` ([] when it does not exist)."""
    if is_remote(folder):
        from apache_beam.io.filesystems import FileSystems
        try:
            return [m.path for m in FileSystems.match([folder.rstrip("/") + "/*"])[0].metadata_list]
        except Exception:
            return []
    try:
        return [os.path.join(folder, n) for n in os.listdir(folder)]
    except OSError:
        return []


def remove_tree(folder):
    if is_remote(folder):
        from apache_beam.io.filesystems import FileSystems
        paths = list_files(folder)
        for sub in ("records",):
            paths += list_files(folder.rstrip("/") + "/" + sub)
        if paths:
            try:
                FileSystems.delete(paths)
            except Exception:
                pass
        return
    shutil.rmtree(folder, ignore_errors=True)


def remove_path(path):
    """Removes a file or a folder (recursively), local or remote; missing is fine."""
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems
        try:
            FileSystems.delete([path])
        except Exception:      # noqa: BLE001 -- gone already
            pass
    elif os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def stage_input(path, scratch):
    """A local path for a video: itself, or a copy of a remote one in `scratch`."""
    if not is_remote(path):
        return path
    from apache_beam.io.filesystems import FileSystems
    local = os.path.join(scratch, "input" + os.path.splitext(path)[1])
    with FileSystems.open(path, compression_type="uncompressed") as src, open(local, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return local


def publish(local_path, remote_path):
    """Uploads one local file or folder (recursively) to a remote path."""
    from apache_beam.io.filesystems import FileSystems
    if os.path.isdir(local_path):
        for name in sorted(os.listdir(local_path)):
            publish(os.path.join(local_path, name), FileSystems.join(remote_path, name))
        return
    with open(local_path, "rb") as src, \
            FileSystems.create(remote_path, compression_type="uncompressed") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
