"""LiteRT models converted once and kept in the cache folder, checked on every load.

    folder, built = cached_models(key_folder, build)   # build(staging) writes the files

The cache lives under `$CRCT_HOME/litert/` (default `~/.cache/crct_tf/litert/`, the folder of
`crct_tf.assets`). Each entry is a folder whose name holds the key of what it was made from
(the sha256 of a weights bundle's manifest, of MTCNN's weight files) and the converter's
version, with a `cache.json` listing the sha256 of every file in it. An entry is used only when
every listed file is there with its sha256; anything else (a truncated or altered file, a
missing one, an unreadable record, an older format) is rebuilt, never used. A build is written
into a hidden staging folder beside the entry and renamed into place once whole, so an
interrupted build leaves nothing that looks complete; two processes building the same entry at
once both finish, and the second finds the first's entry. Entries of one kind (the name's
prefix before the first `-`: `crct`, `mtcnn`) are kept for the `KEEP` most recently used sets
of weights; a build removes older ones, so the cache does not grow with every bundle trained.

Imports only the standard library (no TensorFlow): a cache hit costs the hashing of the files.
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

CACHE_FILE = "cache.json"
CACHE_FORMAT = "crct_tf.litert_cache"
CACHE_VERSION = 1
KEEP = 4


def cache_root():
    """`$CRCT_HOME/litert` (the asset cache's folder, see `crct_tf.assets`)."""
    from crct_tf.assets import crct_home
    return os.path.join(crct_home(), "litert")


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of_bytes(data):
    return hashlib.sha256(data).hexdigest()


def read_record(folder):
    """The `cache.json` of an entry whose every file matches its sha256, else None."""
    try:
        with open(os.path.join(folder, CACHE_FILE)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if (not isinstance(record, dict) or record.get("format") != CACHE_FORMAT
            or record.get("version") != CACHE_VERSION or not isinstance(record.get("files"), dict)
            or not record["files"]):
        return None
    for name, digest in record["files"].items():
        path = os.path.join(folder, name)
        if os.sep in name or not os.path.isfile(path):
            return None
        try:
            if sha256_of(path) != digest:
                return None
        except OSError:
            return None
    return record


def cached_models(folder, build, info=None, on_build=None):
    """The cache entry `folder`, built first when it is missing, incomplete or altered.

    Args:
      folder: the entry's folder (under `cache_root()`).
      build: `build(staging)` writes the entry's files into the empty folder `staging` and may
        return a dict saved in the record under "build".
      info: a dict saved in the record (what the entry was made from).
      on_build: called with the reason ("missing" or "stale") before a build starts (the
        commands print their one progress line there).

    Returns:
      (folder, built): built is True when this call converted the models.
    """
    if read_record(folder) is not None:
        touch(folder)
        return folder, False
    reason = "stale" if os.path.exists(folder) else "missing"
    if on_build is not None:
        on_build(reason)
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".building.", dir=parent)
    try:
        started = time.perf_counter()
        built_info = build(staging) or {}
        seconds = time.perf_counter() - started
        files = {name: sha256_of(os.path.join(staging, name))
                 for name in sorted(os.listdir(staging)) if name != CACHE_FILE}
        record = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "files": files,
                  "info": info or {}, "build": built_info, "build_seconds": round(seconds, 1)}
        with open(os.path.join(staging, CACHE_FILE), "w") as f:
            json.dump(record, f, indent=2)
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _prune(folder)
    return folder, True


def touch(folder):
    """Marks an entry as used now (its record's mtime), for `_prune`."""
    try:
        os.utime(os.path.join(folder, CACHE_FILE))
    except OSError:
        pass


def _prune(folder, keep=KEEP):
    """Removes the least recently used entries of `folder`'s kind beyond `keep`."""
    parent, name = os.path.split(os.path.abspath(folder))
    kind = name.split("-", 1)[0] + "-"
    entries = []
    for other in os.listdir(parent):
        if other.startswith(kind) and other != name:
            try:
                entries.append((os.path.getmtime(os.path.join(parent, other, CACHE_FILE)), other))
            except OSError:
                entries.append((0.0, other))          # no record: an unusable entry
    for _, other in sorted(entries, reverse=True)[max(keep - 1, 0):]:
        shutil.rmtree(os.path.join(parent, other), ignore_errors=True)


def _swap_in(staging, folder):
    """Renames `staging` to `folder`, replacing a stale entry; tolerates a concurrent builder."""
    if os.path.exists(folder):
        trash = tempfile.mkdtemp(prefix=".stale.", dir=os.path.dirname(os.path.abspath(folder)))
        try:
            os.replace(folder, os.path.join(trash, "old"))
        except OSError:
            pass
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(staging, folder)
    except OSError:
        # Another process put a complete entry there first: keep it when it checks out.
        if read_record(folder) is None:
            raise
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def quiet_console():
    """Hides what TensorFlow's converter writes to stderr (file descriptor 2) and Python
    warnings; on an exception the hidden output is written back, for the error's context."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as chatter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(chatter.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            chatter.seek(0)
            tail = chatter.read().decode(errors="replace")[-4000:]
            if tail.strip():
                sys.stderr.write(tail)
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
