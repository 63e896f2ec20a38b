import itertools
import math

import numpy as np
import pytest

from lsm_core.errors import ModelError
from lsm_core.permutation_shap import permutation_shap


def _exact_shapley(f, x, background):
    """Interventional Shapley values of one row by enumerating every coalition."""
    p = len(x)
    value = {}
    for r in range(p + 1):
        for s in itertools.combinations(range(p), r):
            z = background.copy()
            z[:, list(s)] = x[list(s)]
            value[s] = f(z).mean()
    phi = np.zeros(p)
    for j in range(p):
        for r in range(p):
            for s in itertools.combinations([i for i in range(p) if i != j], r):
                w = math.factorial(r) * math.factorial(p - r - 1) / math.factorial(p)
                phi[j] += w * (value[tuple(sorted(s + (j,)))] - value[s])
    return phi


@pytest.fixture
def rows():
    rng = np.random.default_rng(4)
    return rng.normal(size=(30, 4)), rng.normal(size=(12, 4))


def nonlinear(a):
    return np.tanh(a[:, 0] * a[:, 1]) + a[:, 2] ** 2 - 0.5 * a[:, 3]


def test_values_add_up_to_the_prediction(rows):
    data, bg = rows
    values, base = permutation_shap(nonlinear, data, bg, seed=1)
    np.testing.assert_allclose(values.sum(axis=1) + base, nonlinear(data), atol=1e-12)
    assert base == pytest.approx(nonlinear(bg).mean())


def test_linear_model_gets_its_exact_values_from_one_permutation(rows):
    data, bg = rows
    w = np.array([1.0, -2.0, 0.5, 3.0])
    values, _ = permutation_shap(lambda a: a @ w, data, bg, seed=0)
    np.testing.assert_allclose(values, (data - bg.mean(axis=0)) * w, atol=1e-12)


def test_many_permutations_converge_to_the_exact_shapley_values(rows):
    data, bg = rows
    values, _ = permutation_shap(nonlinear, data[:3], bg, permutations=300, seed=2)
    exact = np.array([_exact_shapley(nonlinear, x, bg) for x in data[:3]])
    np.testing.assert_allclose(values, exact, atol=0.03)


def test_seeded_and_batched_the_same(rows, monkeypatch):
    data, bg = rows
    a, _ = permutation_shap(nonlinear, data, bg, seed=5)
    monkeypatch.setattr("lsm_core.permutation_shap._BATCH_ROWS", 7)  # many small batches
    b, _ = permutation_shap(nonlinear, data, bg, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, permutation_shap(nonlinear, data, bg, seed=6)[0])


def test_bad_shapes_are_refused(rows):
    data, bg = rows
    with pytest.raises(ModelError, match="same columns"):
        permutation_shap(nonlinear, data, bg[:, :3])
    with pytest.raises(ModelError, match="permutations"):
        permutation_shap(nonlinear, data, bg, permutations=0)
