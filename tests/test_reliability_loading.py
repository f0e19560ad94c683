"""Loading is safe (issue 9, README "Limits and errors"): nothing in crct_tf/ or tools/ unpickles, evaluates
code, or turns Keras' safe mode off; weights are checked by sha256 (assets and bundles).

The MTCNN detector package loads its own weights with joblib: a third-party exception, outside
this package's code. Comments and strings are ignored (docstrings say "no pickle")."""

import io
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal",
                  "shelve"}


def _sources():
    for folder in ("crct_tf", "tools"):
        yield from sorted((REPO / folder).rglob("*.py"))


def _code_tokens(path):
    """(string, line) of each token that is code (no comments, strings or layout)."""
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
    skip |= {getattr(tokenize, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
             if hasattr(tokenize, name)}
    text = path.read_text(encoding="utf-8")
    return [(t.string, t.start[0]) for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in skip]


def unsafe_uses(path):
    tokens = _code_tokens(path)
    found = []
    for i, (text, line) in enumerate(tokens):
        after = [t for t, _ in tokens[i + 1:i + 3]]
        before = tokens[i - 1][0] if i else ""
        if text in UNSAFE_MODULES:
            found.append((line, f"{text} (unsafe deserialisation)"))
        elif text in ("eval", "exec") and after[:1] == ["("] and before != ".":
            found.append((line, f"{text}("))
        elif text == "safe_mode" and after == ["=", "False"]:
            found.append((line, "safe_mode=False"))
        elif text == "allow_pickle" and after == ["=", "True"]:
            found.append((line, "allow_pickle=True"))
        elif text == "yaml" and after[:1] == ["."] and tokens[i + 2][0] in ("load", "unsafe_load"):
            found.append((line, "yaml.load"))
    return found


def test_the_scanner_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""no pickle here"""\n# eval(x)\nimport pickle\nx = eval("1")\n'
                      'np.load(p, allow_pickle=True)\nkeras.models.load_model(p, safe_mode=False)\n'
                      'model.eval()\n')
    assert [line for line, _ in unsafe_uses(sample)] == [3, 4, 5, 6]


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(REPO)))
def test_no_unsafe_loading_in_our_code(path):
    assert not unsafe_uses(path), f"{path}: {unsafe_uses(path)}"


def test_weights_are_checked_by_sha256_where_they_come_from():
    """Registry assets pin both the archive's and each member's sha256; bundles verify every
    weight file against manifest.json before loading (refusals: test_models, test_track_video)."""
    from crct_tf import assets
    from crct_tf.weights import bundle
    for asset in assets.ASSETS.values():
        assert len(asset.archive_sha256) == 64
        assert all(len(d) == 64 for d in asset.member_sha256.values())
    import inspect
    assert "verify_files" in inspect.getsource(bundle.load_bundle)


def test_a_bundle_whose_weight_file_was_swapped_is_refused(tmp_path):
    """A weight file replaced by another valid file of the same name: sha256 differs."""
    import json
    from helpers import save_untrained_bundle
    from crct_tf.weights.bundle import BundleError, load_bundle
    folder = save_untrained_bundle(tmp_path / "tiny", backbone="tiny")
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(part["file"] for part in manifest["parts"].values())
    first, second = folder / files[0], folder / files[1]
    first.write_bytes(second.read_bytes())
    with pytest.raises(BundleError, match=f"{files[0]}: sha256 differs"):
        load_bundle(str(folder))
