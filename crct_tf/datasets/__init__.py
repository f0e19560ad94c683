"""TFDS builders for users' copies of the face datasets.

Importing this package registers the builders with TFDS:

- `vw300`: 300-VW video frames (configs `2d`, `3da2d`), splits train / test_cat1..3;
- `ibug300w`: 300-W images (configs `2d`, `3da2d`), splits train / test_common /
  test_challenging / test_full / test_300w;
- `menpo2d`: Menpo 2D semi-frontal images (configs `2d`, `3da2d`), splits train (/ test);
- `crct_bootstrap`: the project's own 118 facenet photos with teacher labels (no manual_dir);
- `crct_registry_faces`: every face of the registry packages' sample photos, teacher labels;
- `crct_video_frames`: frames of varied expressions of registry talking-head videos, teacher
  labels.

`2d` is the default config of the first three (`crct_registry_faces`: `all`, `v1_1_0` or
`facetorch_ffhq`); `3da2d` reads 3D-aware 2D labels (`NNN/annot2/`, `<stem>_3d.pts`; see
docs/datasets.md). Each reads the user's download through TFDS `manual_dir` (see
docs/datasets.md); `python -m crct_tf.datasets.build NAME --manual_dir DIR` prepares one.
"""

from crct_tf.datasets import ibug300w  # noqa: F401  (registers "ibug300w")
from crct_tf.datasets import menpo2d  # noqa: F401  (registers "menpo2d")
from crct_tf.datasets import vw300  # noqa: F401  (registers "vw300")
from crct_tf.datasets import crct_bootstrap  # noqa: F401  (registers "crct_bootstrap")
from crct_tf.datasets import registry_faces  # noqa: F401  (registers "crct_registry_faces")
from crct_tf.datasets import video_frames  # noqa: F401  (registers "crct_video_frames")
from crct_tf.datasets.manual_dir import DatasetError  # noqa: F401
from crct_tf.datasets.vw300 import iter_vw300_video, list_vw300_videos  # noqa: F401

# The builders `python -m crct_tf.datasets.build` accepts.
BUILDER_NAMES = ("vw300", "ibug300w", "menpo2d", "crct_bootstrap", "crct_registry_faces",
                 "crct_video_frames")

__all__ = ["BUILDER_NAMES", "DatasetError", "ibug300w", "iter_vw300_video", "list_vw300_videos",
           "menpo2d", "vw300"]
