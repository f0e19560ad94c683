"""The 300-VW video split: 50 training videos and the three test categories.

Source: the 300-VW challenge (Shen et al., ICCV-W 2015) and Chrysos et al., IJCV 2018, whose
categories the CRCT paper reports in Table II: category 1 (well-lit, laboratory-like conditions),
category 2 (unconstrained lighting) and category 3 (completely unconstrained: illumination,
occlusions, expressions, head pose). Videos are named by three-digit folder ids ("001").
"""

VW300_TRAIN_IDS = tuple("""
    001 002 003 004 007 009 010 011 013 015 016 017 018 019 020 022 025 027 028 029 031 033 034
    035 037 039 041 043 044 046 047 048 049 053 057 059 112 113 115 119 120 123 138 143 144 160
    204 205 223 225""".split())

VW300_TEST_CATEGORIES = {
    1: tuple("""
        114 124 125 126 150 158 401 402 505 506 507 508 509 510 511 514 515 518 519 520 521 522
        524 525 537 538 540 541 546 547 548""".split()),
    2: tuple("""
        203 208 211 212 213 214 218 224 403 404 405 406 407 408 409 412 550 551 553""".split()),
    3: tuple("""
        410 411 516 517 526 528 529 530 531 533 557 558 559 562""".split()),
}

VW300_TEST_IDS = tuple(sorted(v for ids in VW300_TEST_CATEGORIES.values() for v in ids))


def category_of(video_id):
    """The test category (1, 2 or 3) of a 300-VW video id such as "114" or 114; None otherwise."""
    key = str(video_id).zfill(3)
    for category, ids in VW300_TEST_CATEGORIES.items():
        if key in ids:
            return category
    return None
