"""The crop constants every sub-network is trained and run with.

One frozen dataclass, passed to the data pipelines, the training step, the tracker and export,
and saved in a weights bundle's manifest, so that no crop constant is written in two places.
"""

import dataclasses

from crct_tf.geometry import cropping


@dataclasses.dataclass(frozen=True)
class CropSettings:
    """How each sub-network sees the face.

    Attributes:
      input_size: side of BT's and FLL's crops (paper III-A: Re3 halved, 128x128).
      fll_input_size: side of FLL's crops when it differs from BT's (None: `input_size`, the
        paper's one size). Not in the paper: FLL sees the face at a finer resolution, on the
        same shared backbone; see `fll_size`.
      bt_context: BT crop window = square of `bt_context` x the larger side of b_{t-1}
        (Re3's 2x context; the authors' code grows the box by half its size per side).
      fll_context: the same for FLL around b_t^BT (eq. 7).
      fll_box: where the tracker puts FLL's crop (`cropping.FLL_BOX_RULES`): `bt`, around
        b_t^BT (Algorithm 1), `bt_centre`, at b_t^BT's centre with b_{t-1}'s size,
        `bt_centre_corrected`, as `bt_centre` with BT's centre moved back by the tracker's
        running mean of its offset from FLL's points (`FaceStates.bt_offset`), or
        `bt_capped`, b_t^BT with its width and height each no larger than b_{t-1}'s.
        Training crops around the (jittered) true box either way.
      fll_flip: the tracker runs FLL on its crop and on the crop's mirror image and averages
        the two point sets (the mirror's points mirrored back and re-indexed). Not in the
        paper (off by default): one more FLL pass per face and frame, for steadier points.
      fll_upright: the tracker turns FLL's crop by the roll of BT's points, so that FLL sees
        the face upright whatever its lean, and sizes it from BT's points seen upright
        (`cropping.turned_context_window`); FLL's points are turned back. Not in the paper (off
        by default): as a tracker with landmarks of the previous frame can (MediaPipe's face
        mesh turns its crop likewise); needs `fll_box` `bt`. Tracking by detection (fll_mt)
        and FLL after a (re)detection use the detector's upright box as before.
      fll_turn: the tracker runs FLL on its crop as it is and on the same square turned by the
        roll of BT's points (the face upright in it), and averages the point sets (the turned
        one turned back; with `fll_flip`, the crop's mirror is the third). Not in the paper (off
        by default): like `fll_flip`, another look that cancels part of FLL's error, at one
        more FLL pass per face and frame. Works with every `fll_box` rule; cannot be combined
        with `fll_upright`, which replaces the crop instead. Tracking by detection and FLL
        after a (re)detection have no BT points and use the one upright crop.
      fv_face_context, fv_face_size, fv_patch_size: the validator's patches (eq. 6), see
        `cropping.landmark_patch_boxes`.
    """
    input_size: int = 128
    fll_input_size: int = None
    bt_context: float = cropping.DEFAULT_CONTEXT
    fll_context: float = cropping.DEFAULT_CONTEXT
    fv_face_context: float = cropping.FV_FACE_CONTEXT
    fv_face_size: int = cropping.FV_FACE_SIZE
    fv_patch_size: int = cropping.FV_PATCH_SIZE
    fll_box: str = "bt"
    fll_flip: bool = False
    fll_upright: bool = False
    fll_turn: bool = False

    def __post_init__(self):
        if self.fll_box not in cropping.FLL_BOX_RULES:
            raise ValueError(f"unknown fll_box {self.fll_box!r}; expected "
                             f"{', '.join(cropping.FLL_BOX_RULES)}")
        for name in ("fll_flip", "fll_upright", "fll_turn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.fll_upright and self.fll_box != "bt":
            raise ValueError(f"fll_upright turns the crop of the `bt` rule; it cannot be "
                             f"combined with fll_box {self.fll_box!r} (choose fll_box bt)")
        if self.fll_upright and self.fll_turn:
            raise ValueError("fll_upright and fll_turn are two ways of turning FLL's crop; "
                             "choose one")
        if self.fll_input_size is not None and (not isinstance(self.fll_input_size, int)
                                                or self.fll_input_size < 1):
            raise ValueError(f"fll_input_size must be a positive integer or None, got "
                             f"{self.fll_input_size!r}")

    @property
    def fll_size(self):
        """The side of FLL's crops: `fll_input_size`, or `input_size` when that is None."""
        return self.fll_input_size or self.input_size

    @property
    def backbone_size(self):
        """The input side of a backbone BT and FLL share: theirs, or None (any) when they differ."""
        return self.input_size if self.fll_size == self.input_size else None

    def with_tracker_choices(self, fll_box=None, fll_flip=None, fll_upright=None, fll_turn=None):
        """These settings with the tracker's FLL choices that are given (None: kept). Turning
        on one of `fll_upright` and `fll_turn` turns the other off unless it is given too."""
        if fll_upright and fll_turn is None:
            fll_turn = False
        if fll_turn and fll_upright is None:
            fll_upright = False
        given = {k: v for k, v in (("fll_box", fll_box), ("fll_flip", fll_flip),
                                   ("fll_upright", fll_upright), ("fll_turn", fll_turn))
                 if v is not None}
        return dataclasses.replace(self, **given)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown crop settings {sorted(unknown)}")
        return cls(**values)
