"""Validation of the classic pretext tasks' configs (trunks, crops, each method's keys)."""

from fvcore.common.config import CfgNode


def validate_pretext(cfg: CfgNode, fail) -> None:
    """Cross-checks of the classic pretext tasks: the trunk, the crops and each method's keys."""
    from math import factorial

    arch, backbone = cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.BACKBONE.NAME
    if backbone in ("resnet_v2", "revnet") and cfg.MODEL.RESNETS.DEPTH != 50:
        fail("MODEL.RESNETS.DEPTH", f"50 for MODEL.BACKBONE.NAME {backbone!r}")
    if backbone == "exemplar_cnn" and arch != "Exemplar":
        fail("MODEL.BACKBONE.NAME", "'exemplar_cnn' only with MODEL.META_ARCHITECTURE 'Exemplar'")
    if cfg.TEST.INSTANCE_DISC_SAMPLES:
        fail("TEST.INSTANCE_DISC_SAMPLES", f"0 for MODEL.META_ARCHITECTURE {arch!r} (no embedding)")
    if cfg.VIS_SAMPLES:
        fail("VIS_SAMPLES", f"0 for MODEL.META_ARCHITECTURE {arch!r} (composites are InsLoc's)")
    crop = cfg.INPUT.PRETEXT.CROP_SIZE
    if cfg.INPUT.PRETEXT.RESIZE and cfg.INPUT.PRETEXT.RESIZE < crop:
        fail("INPUT.PRETEXT.RESIZE", f"0 or a side >= INPUT.PRETEXT.CROP_SIZE ({crop})")
    if arch == "RotNet":
        angles = list(cfg.MODEL.ROTATION.ANGLES)
        if len(angles) < 2 or len(set(a % 360 for a in angles)) != len(angles):
            fail("MODEL.ROTATION.ANGLES", "at least two distinct angles (degrees, modulo 360)")
        if any(a % 45 for a in angles):
            fail("MODEL.ROTATION.ANGLES", "multiples of 45 degrees")
    for method, key in (("Jigsaw", "JIGSAW"), ("RelativeLoc", "RELATIVE_LOC")):
        if arch != method:
            continue
        tile, jitter = cfg.INPUT[key].TILE_SIZE, cfg.INPUT[key].JITTER
        if tile + 2 * jitter > crop // 3:
            fail(
                f"INPUT.{key}.TILE_SIZE",
                f"TILE_SIZE + 2 JITTER ({tile} + 2 x {jitter}) <= INPUT.PRETEXT.CROP_SIZE / 3 "
                f"({crop // 3}), the 3x3 cells the tiles sit in",
            )
    if arch == "Jigsaw" and cfg.MODEL.JIGSAW.NUM_PERMUTATIONS > factorial(9):
        fail("MODEL.JIGSAW.NUM_PERMUTATIONS", "at most 9! = 362880")
    if arch == "Jigsaw" and cfg.MODEL.JIGSAW.MIN_HAMMING > 9:
        fail("MODEL.JIGSAW.MIN_HAMMING", "at most 9 (nine tiles)")
    if arch == "Exemplar":
        patch = cfg.INPUT.EXEMPLAR.PATCH_SIZE
        if cfg.INPUT.EXEMPLAR.SEED_SIZE > crop:
            fail("INPUT.EXEMPLAR.SEED_SIZE", f"a side <= INPUT.PRETEXT.CROP_SIZE ({crop})")
        if cfg.MODEL.EXEMPLAR.LOSS == "triplet" and cfg.INPUT.EXEMPLAR.COPIES < 2:
            fail("INPUT.EXEMPLAR.COPIES", "at least 2 with MODEL.EXEMPLAR.LOSS 'triplet'")
        if backbone == "exemplar_cnn" and patch < 16:
            fail("INPUT.EXEMPLAR.PATCH_SIZE", "at least 16 for the Exemplar-CNN networks")
