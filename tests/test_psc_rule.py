"""The majority-pixel rule and the per-window counting, at their edges."""

import numpy as np

from rsbench.datasets.builders.psc_rule import scene_decision, window_counts


def hist(*pairs, classes=5):
    """Histogram with (code, count) pairs; code 0 = unlabelled."""
    h = np.zeros(classes + 1, dtype=np.int64)
    for code, n in pairs:
        h[code] += n
    return h[None, :]


def test_exactly_half_is_not_a_majority():
    scene, reason = scene_decision(hist((1, 50), (2, 50)), 5, 0.5, 0.25)
    assert scene[0] == -1 and reason[0] == 2


def test_just_over_half_is_a_majority():
    scene, reason = scene_decision(hist((1, 51), (2, 49)), 5, 0.5, 0.25)
    assert scene[0] == 0 and reason[0] == 0


def test_unlabelled_pixels_do_not_count_against_the_majority():
    # 40 unlabelled, 31 class 3, 29 class 4: 31/60 of labelled pixels is a majority
    scene, reason = scene_decision(hist((0, 40), (3, 31), (4, 29)), 5, 0.5, 0.25)
    assert scene[0] == 2 and reason[0] == 0


def test_mostly_unlabelled_patch_is_skipped():
    scene, reason = scene_decision(hist((0, 76), (1, 24)), 5, 0.5, 0.25)
    assert scene[0] == -1 and reason[0] == 1
    scene, reason = scene_decision(hist((0, 75), (1, 25)), 5, 0.5, 0.25)
    assert scene[0] == 0  # exactly at the floor is enough


def test_window_counts_match_a_direct_count():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 7, size=(8, 37)).astype(np.uint8)
    # tiles (with or without a reused buffer, any integer codes) and overlapping windows
    scratch = np.full(codes.size, -1, dtype=np.intp)  # reused buffer, stale content
    for arr, stride, buf in ((codes, 8, None), (codes, 8, scratch), (codes, 8, scratch),
                             (codes, 5, None), (codes, 3, None),
                             (codes.astype(np.int32), 8, None)):
        counts = window_counts(arr, 8, stride, 7, scratch=buf)
        starts = range(0, 37 - 8 + 1, stride)
        expected = [np.bincount(codes[:, s:s + 8].ravel(), minlength=7) for s in starts]
        assert np.array_equal(counts, np.array(expected))


def test_pack_rgb_codes_with_and_without_a_reused_buffer():
    from rsbench.datasets.sources.gid import pack_rgb, rgb_code

    rng = np.random.default_rng(1)
    buf = np.zeros((5, 6), dtype=np.uint32)
    for _ in range(2):  # the second pass overwrites the buffer's earlier codes
        rgb = rng.integers(0, 256, size=(3, 5, 6)).astype(np.uint8)
        expected = rgb_code(rgb[0], rgb[1], rgb[2])
        assert np.array_equal(pack_rgb(rgb), expected)
        assert pack_rgb(rgb, out=buf) is buf and np.array_equal(buf, expected)
