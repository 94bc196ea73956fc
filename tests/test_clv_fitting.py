"""The shared optimiser pieces: grouping of histories and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from segkit.models.clv.fitting import Histories, check_inputs, unique_rows


@pytest.mark.parametrize("offset", [0.0, 0.5])  # packed int64 keys and the lexsort path
def test_unique_rows_inverts(offset):
    rng = np.random.default_rng(0)
    cols = [rng.integers(0, k, 2000).astype(float) + offset for k in (5, 30, 40)]
    keys, inverse = unique_rows(*cols)
    want = np.unique(np.stack(cols, 1), axis=0)
    np.testing.assert_array_equal(np.stack(keys, 1), want)
    for k, c in zip(keys, cols):
        np.testing.assert_array_equal(k[inverse], c)


def test_histories_group_sums_weights():
    h = Histories.group(np.array([1.0, 1.0, 0.0]), np.array([3.0, 3.0, 0.0]), np.array([9.0, 9.0, 9.0]))
    assert h.customers == 3 and h.x.tolist() == [0.0, 1.0] and h.weight.tolist() == [1.0, 2.0]


def test_check_inputs():
    ok = np.array([0.0, 2.0]), np.array([0.0, 3.0]), np.array([5.0, 5.0])
    check_inputs(*ok)
    with pytest.raises(ValueError, match="whole"):
        check_inputs(np.array([0.5]), np.array([1.0]), np.array([2.0]))
    with pytest.raises(ValueError, match="t_x must be 0"):
        check_inputs(np.array([0.0]), np.array([1.0]), np.array([2.0]))
