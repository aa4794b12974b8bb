"""The held-out split: deterministic under a seed, by shape, and never seen by the fit."""

import copy

import pytest
from calib_helpers import synthetic_rows

from accelsim.calibrate.data import resolve_chip, split, unit_key
from accelsim.calibrate.validate import calibrate
from accelsim.errors import UserError
from accelsim.perf import Analytical


def test_same_seed_same_split_other_seed_other_split():
    rows = synthetic_rows(noise=0.02)
    _, _, exclude = resolve_chip(rows, None)
    a = split(rows, 0.25, 7, exclude)
    assert split(rows, 0.25, 7, exclude) == a
    assert any(split(rows, 0.25, s, exclude) != a for s in range(8, 12))


def test_split_partitions_rows_by_shape_and_keeps_chip_rows_out():
    rows = synthetic_rows(noise=0.02, configs=True)
    _, _, exclude = resolve_chip(rows, None)
    train, test = split(rows, 0.3, 0, exclude)
    assert not set(train) & set(test)
    assert set(train) | set(test) | exclude == set(range(len(rows)))
    assert not (set(train) | set(test)) & exclude
    # every config of a shape falls on the same side
    side = {}
    for i in train + test:
        side.setdefault(unit_key(rows[i]), set()).add(i in test)
    assert all(len(s) == 1 for s in side.values())
    # about 30% of each class's shapes are held out
    for cls in ("gemm", "grouped_gemm", "elementwise"):
        shapes = {unit_key(rows[i]) for i in train + test if rows[i]["op"] == cls}
        held = {unit_key(rows[i]) for i in test if rows[i]["op"] == cls}
        assert abs(len(held) - 0.3 * len(shapes)) <= 1


def test_held_out_rows_never_reach_the_fit():
    """Scrambling every held-out time leaves the fitted curves exactly as they were (and does
    change the held-out error, so the scrambling is seen where it should be)."""
    rows = synthetic_rows(noise=0.03, seed=2)
    chip, _, exclude = resolve_chip(rows, None)
    train, test = split(rows, 0.25, 3, exclude)
    base = calibrate(rows, chip, train, test, base=Analytical(), base_name="default")
    scrambled = copy.deepcopy(rows)
    for i in test:
        scrambled[i]["median_s"] *= 10.0 if i % 2 else 0.1
    again = calibrate(scrambled, chip, train, test, base=Analytical(), base_name="default")
    assert {k: c.to_dict() for k, c in again.profile.curves.items()} == \
           {k: c.to_dict() for k, c in base.profile.curves.items()}
    assert again.report["median_ape"] > 5 * base.report["median_ape"]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_bad_test_fraction_is_a_user_error(fraction):
    with pytest.raises(UserError, match="test-fraction"):
        split(synthetic_rows(), fraction, 0)
