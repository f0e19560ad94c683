"""Converts 3D-aware 2D landmarks from MATLAB `.mat` files to 300-W `.pts` files.

    # LS3D-W's Menpo-3D: x.mat beside x.jpg -> x_3d.pts beside them (menpo2d config 3da2d)
    python tools/convert_ls3dw.py ~/data/LS3D-W/Menpo-3D --suffix _3d
    # 300W-LP: landmarks/AFW/AFW_134212_1_0_pts.mat -> ~/data/300W-LP-3d/AFW/AFW_134212_1_0.pts
    python tools/convert_ls3dw.py ~/data/300W_LP/landmarks --strip_suffix _pts \
        --out_dir ~/data/300W-LP-3d
    # numbered video frames: 114/0001.mat ... -> ~/data/300VW/114/annot2/000001.pts (check
    # that file k is 300-VW's 1-based frame k)
    python tools/convert_ls3dw.py ~/data/3d_frames/114 --pad_digits 6 \
        --out_dir ~/data/300VW/114/annot2

LS3D-W (Bulat & Tzimiropoulos, ICCV 2017), AFLW2000-3D and 300W-LP distribute their 68-point
3D-aware 2D (3DA-2D) landmarks as one MATLAB file per image. LS3D-W's own files are Torch `.t7`;
this tool reads `.mat` only: convert `.t7` files to `.mat` first (docs/datasets.md, "3DA-2D labels").

What it assumes, exactly:
- One array per file under the first of `--key` present (default: pt3d_68, pts_3d, pts_2d,
  pt2d), of shape 68x2, 2x68, 68x3 or 3x68: the dimension of size 68 runs over the iBUG points
  (in iBUG order), the other holds x (column, to the right), y (row, down) and optionally z,
  which is dropped. MATLAB v7.3 (HDF5) files are read with h5py (their arrays come transposed;
  both orientations are accepted, so this does not matter).
- The coordinates are MATLAB's: 1-based pixels, the centre of the top-left pixel at (1, 1).
  They are converted to 0-based pixels (subtract 1) and written by `crct_tf.geometry.landmarks.write_pts`,
  which writes `.pts` files 1-based as 300-W does: so the numbers in the `.pts` equal those of
  the `.mat`. For files already 0-based pass `--origin 0` (1 is then added in the `.pts`).
- The output stem is the `.mat` stem (less `--strip_suffix`; numeric stems zero-padded to
  `--pad_digits`) plus `--suffix`: `x.mat` -> `x<suffix>.pts`, beside the `.mat` (LS3D-W keeps it
  beside the image) or, with `--out_dir`, under `--out_dir` at the `.mat`'s path relative to
  its input folder (a parallel folder mirroring the tree).

Every file is read and checked before any `.pts` is written; an existing `.pts` is replaced only
with `--overwrite`. Exit 0 after printing the count; exit 2 with one line on stderr naming the
file on bad input (unreadable file, no such key, wrong shape, non-finite values, collisions).
Needs scipy (`pip install -e .[convert]`).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crct_tf.geometry import landmarks as lm  # noqa: E402

DEFAULT_KEYS = ("pt3d_68", "pts_3d", "pts_2d", "pt2d")
NUM_POINTS = lm.NUM_LANDMARKS


class ConvertError(ValueError):
    """Bad input; the message is one line naming the file."""


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser():
    parser = _OneLineParser(prog="convert_ls3dw.py", description=(
        "Convert 68-point landmarks in MATLAB .mat files (LS3D-W, AFLW2000-3D, 300W-LP) to "
        "0-based-in-memory / 1-based-on-disk .pts files."))
    parser.add_argument("inputs", nargs="+", help=".mat files or folders (searched recursively)")
    parser.add_argument("--out_dir", default=None, help="write into this folder, mirroring each "
                        "input folder's tree (default: beside each .mat)")
    parser.add_argument("--suffix", default="", help="appended to the stem: x.mat -> "
                        "x<suffix>.pts (the image builders' 3da2d configs read x_3d.pts)")
    parser.add_argument("--strip_suffix", default="", help="removed from the end of each stem "
                        "first (300W-LP: _pts)")
    parser.add_argument("--pad_digits", type=int, default=0, help="zero-pad numeric stems to "
                        "this many digits (300-VW frames: 6)")
    parser.add_argument("--key", default=",".join(DEFAULT_KEYS), help="comma-separated variable "
                        "names to try, first present wins (default: %(default)s)")
    parser.add_argument("--origin", type=int, choices=(0, 1), default=1, help="coordinate of the "
                        "first pixel in the .mat: 1 (MATLAB, default) or 0")
    parser.add_argument("--overwrite", action="store_true", help="replace existing .pts files")
    return parser


def find_mat_files(inputs):
    """[(mat path, path relative to its input)] of files and folders (recursive, sorted)."""
    found = []
    for item in inputs:
        item = os.path.expanduser(item)
        if os.path.isfile(item):
            found.append((item, os.path.basename(item)))
        elif os.path.isdir(item):
            for folder, dirs, files in os.walk(item):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(".mat"):
                        path = os.path.join(folder, name)
                        found.append((path, os.path.relpath(path, item)))
        else:
            raise ConvertError(f"{item}: no such file or folder")
    if not found:
        raise ConvertError(f"no .mat file in {', '.join(inputs)}")
    return found


def _load_variables(path, keys):
    """{key: array} of the wanted variables of a .mat file (v4-v7 with scipy, v7.3 with h5py)."""
    try:
        import scipy.io
    except ImportError:
        raise ConvertError("scipy is needed to read .mat files: pip install -e .[convert]") \
            from None
    try:
        return scipy.io.loadmat(path, variable_names=list(keys))
    except NotImplementedError:          # MATLAB v7.3: an HDF5 file
        import h5py
        try:
            with h5py.File(path, "r") as f:
                return {k: np.array(f[k]) for k in keys if k in f}
        except OSError as e:
            raise ConvertError(f"{path}: cannot read this v7.3 .mat file ({e})") from None
    except (ValueError, TypeError, OSError) as e:
        raise ConvertError(f"{path}: cannot read this .mat file "
                           f"({' '.join(str(e).split()) or e.__class__.__name__})") from None


def read_landmarks(path, keys=DEFAULT_KEYS, origin=1):
    """The [68, 2] float64 0-based landmarks of one `.mat` file (see the module docstring).

    Raises:
      ConvertError: naming the file: unreadable, no key present, wrong shape, non-finite values.
    """
    variables = _load_variables(path, keys)
    key = next((k for k in keys if k in variables), None)
    if key is None:
        raise ConvertError(f"{path}: none of the variables {', '.join(keys)} in this .mat file "
                           "(choose one with --key)")
    try:
        array = np.asarray(variables[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ConvertError(f"{path}: variable {key} is not a numeric array") from None
    if array.ndim == 2 and array.shape[1] == NUM_POINTS and array.shape[0] in (2, 3):
        array = array.T
    if array.ndim != 2 or array.shape[0] != NUM_POINTS or array.shape[1] not in (2, 3):
        raise ConvertError(f"{path}: variable {key} has shape {'x'.join(map(str, array.shape))},"
                           " expected 68x2, 2x68, 68x3 or 3x68")
    points = array[:, :2]
    if not np.all(np.isfinite(points)):
        raise ConvertError(f"{path}: variable {key} holds non-finite coordinates")
    return points - origin


def output_path(mat_path, relpath, out_dir=None, suffix="", strip_suffix="", pad_digits=0):
    """Where the `.pts` of `mat_path` goes (see the module docstring)."""
    stem = os.path.splitext(os.path.basename(mat_path))[0]
    if strip_suffix and stem.endswith(strip_suffix) and stem != strip_suffix:
        stem = stem[:-len(strip_suffix)]
    if pad_digits and stem.isdigit():
        stem = stem.zfill(pad_digits)
    name = f"{stem}{suffix}.pts"
    if out_dir is None:
        return os.path.join(os.path.dirname(mat_path), name)
    return os.path.join(os.path.expanduser(out_dir), os.path.dirname(relpath), name)


def convert(inputs, out_dir=None, suffix="", strip_suffix="", pad_digits=0, keys=DEFAULT_KEYS,
            origin=1, overwrite=False, progress=False):
    """Converts every `.mat` of `inputs`; returns the written `.pts` paths.

    All files are read and checked first: on any ConvertError nothing is written.
    """
    files = find_mat_files(inputs)
    iterator = files
    if progress:
        from tqdm import tqdm
        iterator = tqdm(files, desc="reading .mat", unit="file", disable=None)
    planned = {}
    for mat_path, relpath in iterator:
        target = output_path(mat_path, relpath, out_dir, suffix, strip_suffix, pad_digits)
        if target in planned:
            raise ConvertError(f"{mat_path}: would write {target} a second time (two inputs "
                               "give the same name)")
        if os.path.exists(target) and not overwrite:
            raise ConvertError(f"{mat_path}: {target} exists (pass --overwrite to replace it)")
        planned[target] = read_landmarks(mat_path, keys, origin)
    for target, points in planned.items():
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        lm.write_pts(target, points)
    return list(planned)


def main(argv=None):
    args = _parser().parse_args(argv)
    keys = tuple(k.strip() for k in args.key.split(",") if k.strip())
    try:
        if not keys:
            raise ConvertError("--key: give at least one variable name")
        if args.pad_digits < 0:
            raise ConvertError("--pad_digits must be >= 0")
        written = convert(args.inputs, args.out_dir, args.suffix, args.strip_suffix,
                          args.pad_digits, keys, args.origin, args.overwrite, progress=True)
    except (ConvertError, OSError) as e:
        sys.stderr.write(f"convert_ls3dw.py: error: {' '.join(str(e).split())}\n")
        return 2
    where = args.out_dir or "beside the .mat files"
    sys.stdout.write(f"wrote {len(written)} .pts files ({where})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
