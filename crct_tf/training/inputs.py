"""Training inputs: the example sources named by `--dataset`, fed to each sub-network's pipeline.

Sources yield `{image: uint8 [H, W, 3], landmarks: float32 [68, 2]}`:
  synthetic        generated faces (crct_tf.data.synthetic), no download at all
  crct_bootstrap   the 118 facenet photos with the teacher's labels (fetched by crct_tf.assets)
  crct_registry_faces   138 faces of many more people from registry packages, teacher-labelled
                   (train only); a config chooses an earlier version, e.g.
                   `crct_registry_faces/v1_3_0`: 90 faces of 52 people
  crct_video_frames   48 frames of varied expressions from two registry talking-head videos,
                   teacher-labelled (train only)
  vw300, ibug300w, menpo2d   users' copies through TFDS `manual_dir` (never downloaded); a
                   builder config is chosen TFDS's way, NAME/CONFIG: `vw300/3da2d` (the 3DA-2D
                   annotations, NNN/annot2/), `ibug300w/3da2d`, `menpo2d/3da2d`; default `2d`
Several sources are mixed round-robin. Each task (`crct_tf.training.tasks`) feeds them to its
pipeline in `crct_tf.data`, with the same crops as the tracker.
"""

import dataclasses

import tensorflow as tf

IMAGE_DATASETS = ("crct_bootstrap", "crct_registry_faces", "crct_video_frames", "ibug300w",
                  "menpo2d")
VIDEO_DATASETS = ("vw300",)
KNOWN = ("synthetic",) + IMAGE_DATASETS + VIDEO_DATASETS
# Users' copies read through TFDS manual_dir; they take a builder config (NAME/CONFIG).
MANUAL_DATASETS = ("vw300", "ibug300w", "menpo2d")
# Datasets that take a builder config (NAME/CONFIG).
CONFIGURABLE_DATASETS = MANUAL_DATASETS + ("crct_registry_faces",)


class InputError(ValueError):
    """A dataset flag that cannot be served; the message says what to change."""


def dataset_name(entry):
    """The builder name of a `--dataset` entry: "vw300/3da2d" -> "vw300"."""
    return entry.split("/", 1)[0]


def _builder_config(entry):
    """The TFDS BuilderConfig an entry of CONFIGURABLE_DATASETS selects (default without /).

    Raises:
      InputError: an unknown config, naming the choices.
    """
    import tensorflow_datasets as tfds

    import crct_tf.datasets  # noqa: F401  (registers the builders)
    name, _, config = entry.partition("/")
    builder_cls = tfds.builder_cls(name)
    configs = builder_cls.builder_configs
    if config and config not in configs:
        raise InputError(f"--dataset {entry}: unknown config {config!r} of {name}; choose from "
                         f"{', '.join(configs)}")
    return configs[config or builder_cls.DEFAULT_CONFIG_NAME]


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """What `--dataset`, `--manual_dir`, `--data_dir`, `--split`, `--frame_step` ask for."""
    names: tuple
    manual_dirs: tuple
    data_dir: str
    split: str
    frame_step: int = 3

    def __init__(self, names, manual_dirs, data_dir, split, frame_step=3):
        names = tuple(n.strip() for n in names if n.strip())
        manual_dirs = tuple(manual_dirs or ())
        unknown = [n for n in names if dataset_name(n) not in KNOWN]
        if not names or unknown:
            raise InputError(f"--dataset {','.join(names) or '(empty)'}: unknown "
                             f"{unknown or 'none given'}; choose from {', '.join(KNOWN)}")
        for entry in names:
            if "/" in entry and dataset_name(entry) not in CONFIGURABLE_DATASETS:
                raise InputError(f"--dataset {entry}: only {', '.join(CONFIGURABLE_DATASETS)} "
                                 "take a config (NAME/CONFIG)")
            if "/" in entry:
                _builder_config(entry)
        needs_manual = [n for n in names if dataset_name(n) in MANUAL_DATASETS]
        if needs_manual and not manual_dirs:
            raise InputError(f"--dataset {','.join(needs_manual)} reads your copy of the data: "
                             "give --manual_dir (see README, Datasets)")
        if len(manual_dirs) not in (0, 1, len(names)):
            raise InputError(f"--manual_dir: give one folder, or one per --dataset entry "
                             f"({len(names)}), not {len(manual_dirs)}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "manual_dirs", manual_dirs)
        object.__setattr__(self, "data_dir", data_dir)
        object.__setattr__(self, "split", split)
        object.__setattr__(self, "frame_step", frame_step)

    def manual_dir_of(self, index):
        if not self.manual_dirs:
            return None
        return self.manual_dirs[0] if len(self.manual_dirs) == 1 else self.manual_dirs[index]


def _tfds_examples(name, manual_dir, data_dir, split):
    """`{image, landmarks}` of a TFDS dataset; `name` may select a config: "ibug300w/3da2d"."""
    import tensorflow_datasets as tfds

    import crct_tf.datasets  # noqa: F401  (registers the builders)
    kwargs = {}
    if manual_dir:
        kwargs["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)}
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False, **kwargs)
    except (ValueError, AssertionError, tfds.core.registered.DatasetNotFoundError) as e:
        raise InputError(f"{name} split {split!r}: {str(e).splitlines()[0]}") from None
    return dataset.map(lambda ex: {"image": ex["image"], "landmarks": ex["landmarks"]})


SYNTHETIC_EXAMPLES = {"train": 512, "val": 64}   # generated faces per split


def image_examples(sources):
    """The still-image examples of all sources, mixed round-robin, one pass."""
    from crct_tf.data import synthetic
    datasets = []
    for index, name in enumerate(sources.names):
        if name == "synthetic":
            count = SYNTHETIC_EXAMPLES.get(sources.split, SYNTHETIC_EXAMPLES["val"])
            datasets.append(synthetic.synthetic_faces(count, seed=0 if sources.split == "train"
                                                      else 1))
        elif dataset_name(name) in IMAGE_DATASETS:
            datasets.append(_tfds_examples(name, sources.manual_dir_of(index), sources.data_dir,
                                           sources.split))
        else:
            raise InputError(f"--dataset {name} holds videos: it trains BT only")
    if len(datasets) == 1:
        return datasets[0]
    choice = tf.data.Dataset.range(len(datasets)).repeat()
    return tf.data.Dataset.choose_from_datasets(datasets, choice, stop_on_empty_dataset=False)


def is_video(sources):
    """Whether the sources are videos (vw300): BT then trains on consecutive frames."""
    return dataset_name(sources.names[0]) in VIDEO_DATASETS


def video_dirs(sources):
    """(video folders, annotation folder) of the vw300 entries: the config sets the folder
    (`vw300` / `vw300/2d`: annot, `vw300/3da2d`: annot2); videos without it are skipped."""
    from crct_tf.datasets.manual_dir import DatasetError
    from crct_tf.datasets.vw300 import list_vw300_videos
    dirs, annot_dirs = [], set()
    for index, name in enumerate(sources.names):
        if dataset_name(name) != "vw300":
            raise InputError("BT on videos: mix vw300 with no other --dataset")
        annot_dir = _builder_config(name).annot_dir
        annot_dirs.add(annot_dir)
        try:
            dirs += [e.video_dir for e in list_vw300_videos(sources.manual_dir_of(index),
                                                            sources.split, annot_dir=annot_dir)]
        except DatasetError as e:
            raise InputError(str(e)) from None
    if len(annot_dirs) > 1:
        raise InputError(f"--dataset {','.join(sources.names)}: BT on videos reads one "
                         "annotation folder; do not mix vw300 configs")
    return dirs, annot_dirs.pop()


def run_seed(seed, first_example):
    """The pipelines' seed for a (re)start at `first_example`: a resumed run draws a stream
    that depends only on (seed, step), so it is reproducible from the step count."""
    return int(seed) * 1_000_003 + int(first_example)
