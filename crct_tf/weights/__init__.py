"""Weights bundles (the folder format of `--weights` and of the bundled weights) and the atomic
folder writer every exporter uses.

    bundle.py         write, verify and load a weights bundle
    staged_folder.py  build a folder under a temporary name, then rename it into place
    packaged.py       where the bundled weights live inside the installed package
"""
