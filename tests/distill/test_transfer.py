"""Transfer sets: MUNGE exactly as Bucilua et al. 2006 §4.3, RANDOM and NBE, jitter."""

from __future__ import annotations

import numpy as np
import pytest

from distill.transfer import (
    GENERATORS,
    IMAGE_ONLY,
    TRANSFER_FIELDS,
    _conflict_free_chunks,
    describe,
    hard_labels,
    jitter,
    make_transfer,
    munge_pass,
    nearest_neighbours,
)
from ground.errors import UserError

SYNTHETIC = [m for m in GENERATORS if m != "original" and m not in IMAGE_ONLY]


def mixed_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated continuous columns, one skewed, and two nominal columns with odd codes."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    cluster = rng.integers(0, 2, n)
    x = np.stack(
        [
            a + 5 * cluster,
            2 * a + 5 * cluster + 0.1 * rng.normal(size=n),
            rng.exponential(size=n),
            rng.choice([3.0, 7.0, 11.0], n),
            rng.choice([0.0, 1.0], n),
        ],
        axis=1,
    ).astype(np.float32)
    return x, np.array([False, False, False, True, True])


def pairs(
    n_pairs: int, gap: float = 1.0, nominal: bool = True, dims: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest-neighbour pairs: uniform random centres in ``dims`` dimensions (far apart
    relative to ``gap``), row 2k at centre k, row 2k+1 at centre k + gap; a nominal column holding
    0 in even rows and 1 in odd rows. The Hamming term, 1, is small next to the squared distance
    between centres once each attribute is scaled to [0, 1] (about dims / 6)."""
    centres = np.random.default_rng(123).uniform(0.0, 100.0, size=(n_pairs, dims))
    cont = np.repeat(centres, 2, axis=0) + np.tile([0.0, gap], n_pairs)[:, None]
    cols = [cont] + ([np.tile([0.0, 1.0], n_pairs)[:, None]] if nominal else [])
    return np.hstack(cols), np.array([False] * dims + ([True] if nominal else []))


@pytest.mark.parametrize("method", SYNTHETIC)
def test_size_original_first_nominal_in_set_and_seeded(method):
    x, nominal = mixed_data()
    out = make_transfer({"method": method, "size_multiplier": 4}, x, nominal, seed=1)
    assert out.shape == (4 * len(x), x.shape[1]) and out.dtype == np.float32
    np.testing.assert_array_equal(out[: len(x)], x)
    for a in np.flatnonzero(nominal):
        assert set(np.unique(out[:, a])) <= set(np.unique(x[:, a]))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(
        out, make_transfer({"method": method, "size_multiplier": 4}, x, nominal, seed=1)
    )
    assert not np.array_equal(
        out, make_transfer({"method": method, "size_multiplier": 4}, x, nominal, seed=2)
    )
    synth = out[len(x) :]
    assert not np.array_equal(synth[: len(x)], x), "synthetic rows must differ from the originals"


@pytest.mark.parametrize("method", SYNTHETIC)
def test_marginals_roughly_preserved(method):
    x, nominal = mixed_data(600)
    synth = make_transfer({"method": method, "size_multiplier": 6}, x, nominal, seed=0)[len(x) :]
    for a in range(x.shape[1]):
        sd = x[:, a].std()
        assert abs(synth[:, a].mean() - x[:, a].mean()) < 0.15 * sd, a
        assert 0.7 < synth[:, a].std() / sd < 1.3, a
    for a in np.flatnonzero(nominal):  # category frequencies too
        for v in np.unique(x[:, a]):
            assert abs((synth[:, a] == v).mean() - (x[:, a] == v).mean()) < 0.06


def test_random_breaks_dependence_but_nbe_and_munge_keep_it():
    """RANDOM samples each attribute independently (§4.1); NBE's mixture and MUNGE keep structure."""
    x, nominal = mixed_data(600)
    corr = {
        m: np.corrcoef(
            make_transfer({"method": m, "size_multiplier": 5}, x, nominal, seed=0)[len(x) :, :2].T
        )[0, 1]
        for m in SYNTHETIC
    }
    assert np.corrcoef(x[:, :2].T)[0, 1] > 0.95
    assert abs(corr["random"]) < 0.1
    assert corr["nbe"] > 0.6 and corr["munge"] > 0.9, corr


def test_random_draws_only_observed_values():
    x, nominal = mixed_data()
    synth = make_transfer({"method": "random", "size_multiplier": 3}, x, nominal, seed=0)[len(x) :]
    for a in range(x.shape[1]):
        assert set(np.unique(synth[:, a])) <= set(np.unique(x[:, a]))


def test_nbe_stays_in_observed_range():
    x, nominal = mixed_data()
    synth = make_transfer({"method": "nbe", "size_multiplier": 5}, x, nominal, seed=0)[len(x) :]
    assert (synth.min(0) >= x.min(0)).all() and (synth.max(0) <= x.max(0)).all()


def test_nearest_neighbours_mix_euclidean_and_hamming():
    # Row 0's continuous twin is row 1, but row 1 differs in two nominal columns (Hamming 2 > 0.8^2).
    x = np.array([[0.0, 1, 1], [0.1, 2, 2], [0.8, 1, 1], [5.0, 1, 1]])
    nominal = np.array([False, True, True])
    nn = nearest_neighbours(x, nominal)
    assert nn[0] == 2
    nn_cont = nearest_neighbours(x[:, :1], np.array([False]))
    assert nn_cont[0] == 1


def test_nearest_neighbours_scale_continuous_to_unit_range_as_the_paper_does():
    """[0, 1] scaling (default) and z-scores disagree when one column is heavy-tailed: its outlier
    stretches the range (a 7-unit step there is small) but hardly the sd (the same step is large)."""
    x = np.zeros((20, 2))
    x[10:, 1] = 10.0  # column 1: two clusters, range / sd about 2
    x[19, 0] = 100.0  # column 0: one outlier, range / sd about 4
    x[3:10, 0] = np.arange(30, 37)
    x[1], x[2] = (
        [7.0, 0.0],
        [0.0, 1.0],
    )  # row 0's candidates: 7 away in column 0, 1 away in column 1
    nominal = np.zeros(2, bool)
    assert nearest_neighbours(x, nominal)[0] == 1  # 7/100 < 1/10
    assert nearest_neighbours(x, nominal, "minmax")[0] == 1
    assert nearest_neighbours(x, nominal, "zscore")[0] == 2  # 7/24.5 > 1/4.95
    with pytest.raises(UserError, match=r"distance scale must be one of minmax, zscore; got 'l1'"):
        nearest_neighbours(x, nominal, "l1")
    a = make_transfer({"method": "munge", "size_multiplier": 2}, x, nominal, seed=0)
    b = make_transfer(
        {"method": "munge", "size_multiplier": 2, "distance_scale": "zscore"}, x, nominal, seed=0
    )
    assert not np.array_equal(a, b)


def test_munge_pass_swap_rate_is_p_per_attribute():
    """Visiting only e (not e'), each attribute is chosen with probability p (§4.3)."""
    p = 0.3
    x, nominal = pairs(4000)
    nn = nearest_neighbours(x, nominal)
    np.testing.assert_array_equal(nn, np.arange(len(x)) ^ 1)  # the construction: mutual pairs
    evens = np.arange(0, len(x), 2)
    t = munge_pass(x.copy(), nominal, nn, p, 10.0, np.random.default_rng(0), chunks=[evens])
    changed = t[evens] != x[evens]
    rate = changed.mean(axis=0)
    assert np.all(np.abs(rate - p) < 0.03), rate
    # a chosen attribute moves both e and e'; nothing else moves
    np.testing.assert_array_equal(changed, t[evens + 1] != x[evens + 1])


def test_munge_full_walk_on_mutual_pairs_changes_nominal_at_2p_1_minus_p():
    """In the paper's walk both e and e' are visited, so a nominal value swaps back with
    probability p^2: it ends changed with probability 2p(1-p)."""
    p = 0.2
    x, nominal = pairs(2000)
    out = make_transfer({"method": "munge", "size_multiplier": 6, "p": p}, x, nominal, seed=3)
    synth = out[len(x) :]
    changed = (synth[:, -1] != np.tile(x[:, -1], 5)).mean()
    assert abs(changed - 2 * p * (1 - p)) < 0.02, changed
    assert set(np.unique(synth[:, -1])) == {0.0, 1.0}


@pytest.mark.parametrize("s", [2.0, 8.0])
def test_munge_continuous_sd_is_distance_over_s(s):
    gap = 3.0
    x, nominal = pairs(5000, gap=gap, nominal=False)
    nn = nearest_neighbours(x, nominal)
    evens = np.arange(0, len(x), 2)
    t = munge_pass(x.copy(), nominal, nn, 1.0, s, np.random.default_rng(0), chunks=[evens])
    e_new = t[evens, 0] - x[evens + 1, 0]  # e_a ~ N(e'_a, |a-b|/s)
    f_new = t[evens + 1, 0] - x[evens, 0]  # e'_a ~ N(e_a, |a-b|/s)
    for dev in (e_new, f_new):
        assert abs(dev.mean()) < 0.05 * gap / s
        assert abs(dev.std() / (gap / s) - 1) < 0.05


def test_munge_smaller_s_spreads_wider():
    """Through the public entry point: a synthetic value lies near one of the pair's two values,
    at a distance that scales like |a - b| / s."""
    x, nominal = pairs(1000, gap=1.0)
    spread = {}
    for s in (1.0, 10.0):
        out = make_transfer(
            {"method": "munge", "size_multiplier": 3, "p": 0.5, "s": s}, x, nominal, seed=0
        )
        synth, base = out[len(x) :, 0], np.tile(np.repeat(x[0::2, 0], 2), 2)
        spread[s] = np.minimum(np.abs(synth - base), np.abs(synth - base - 1.0)).mean()
    assert spread[1.0] > 4 * spread[10.0], spread


def test_munge_chunks_reproduce_the_sequential_walk():
    """The vectorized pass equals the paper's row-by-row walk (same random draws)."""
    x, nominal = mixed_data(80)
    nn = nearest_neighbours(x, nominal)
    chunks = _conflict_free_chunks(nn)
    assert sum(len(c) for c in chunks) == len(x) and len(chunks) > 1
    fast = munge_pass(x.astype(np.float64), nominal, nn, 0.5, 3.0, np.random.default_rng(7), chunks)
    # same draws, one row at a time
    rng = np.random.default_rng(7)
    t = x.astype(np.float64)
    for rows in chunks:
        chosen = rng.random((len(rows), x.shape[1])) < 0.5
        z = rng.standard_normal((2, len(rows), x.shape[1]))
        for r, i in enumerate(rows):
            j = nn[i]
            for a in np.flatnonzero(chosen[r]):
                u, v = t[i, a], t[j, a]
                if nominal[a]:
                    t[i, a], t[j, a] = v, u
                else:
                    sd = abs(u - v) / 3.0
                    t[i, a], t[j, a] = v + sd * z[0, r, a], u + sd * z[1, r, a]
    np.testing.assert_allclose(fast, t)


def test_original_returns_training_rows():
    x, nominal = mixed_data()
    np.testing.assert_array_equal(make_transfer({"method": "original"}, x, nominal, seed=0), x)
    np.testing.assert_array_equal(
        make_transfer({"method": "munge", "size_multiplier": 1}, x, nominal, seed=0), x
    )


@pytest.mark.parametrize(
    "section, x, nominal, match",
    [
        ({"method": "smote"}, None, None, r"transfer\.method' must be one of 'original', 'munge'"),
        ({"method": "original", "size_multiplier": 5}, None, None, r"adds no rows"),
        (
            {"method": "munge", "p": 1.5},
            None,
            None,
            r"transfer\.p' must be in the range \[0.0, 1.0\]; got 1.5",
        ),
        ({"method": "munge", "s": 0}, None, None, r"transfer\.s' must be in the range"),
        (
            {"method": "munge", "distance_scale": "unit"},
            None,
            None,
            r"transfer\.distance_scale' must be one of 'minmax', 'zscore'",
        ),
        ({"method": "munge", "multiplier": 3}, None, None, r"Did you mean 'size_multiplier'"),
        (
            {"method": "munge"},
            np.array([[1.0, np.nan], [2.0, 3.0]]),
            None,
            r"row 0, column 1 is nan",
        ),
        ({"method": "munge"}, np.ones((4, 2)), np.array([True]), r"one entry per column \(2\)"),
        ({"method": "munge"}, np.ones(4), None, r"shape \(4,\)"),
    ],
)
def test_errors_name_the_value(section, x, nominal, match):
    if x is None:
        x, nominal = mixed_data(20)
    with pytest.raises(UserError, match=match):
        make_transfer(section, x, nominal, seed=0)


def test_fields_cover_every_generator():
    assert set(TRANSFER_FIELDS["method"].choices) == set(GENERATORS)


def test_jitter_is_fresh_noise_of_the_given_sd():
    x = np.zeros((20000, 3), np.float32)
    rng = np.random.default_rng(0)
    a, b = jitter(x, 0.1, rng), jitter(x, 0.1, rng)
    assert a.dtype == np.float32 and abs(a.std() - 0.1) < 0.005
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(jitter(x, 0.0, rng), x)
    with pytest.raises(UserError, match=r"jitter must be a finite number >= 0; got -1"):
        jitter(x, -1.0, rng)


@pytest.mark.slow
@pytest.mark.parametrize("method", SYNTHETIC)
def test_a_400k_row_transfer_set_is_feasible(method):
    """Benchmark scale: 40k Adult-like rows (6 continuous, 8 nominal) grown tenfold."""
    import time

    rng = np.random.default_rng(0)
    n = 40_000
    cont = rng.normal(size=(n, 6)) * [13, 1e5, 2.5, 7e3, 400, 12]
    nom = np.stack([rng.integers(0, k, n) for k in (9, 16, 7, 15, 6, 5, 2, 42)], 1)
    x = np.hstack([cont, nom]).astype(np.float32)
    nominal = np.array([False] * 6 + [True] * 8)
    t0 = time.perf_counter()
    out = make_transfer({"method": method, "size_multiplier": 10}, x, nominal, seed=0)
    assert out.shape == (400_000, 14) and time.perf_counter() - t0 < 120


def test_hard_labels_keep_true_labels_only_where_rows_are_the_training_rows():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.array([2, 0, 1])
    probs = np.eye(3, dtype=np.float32)[
        [1, 1, 1, 0, 2]
    ]  # the teacher disagrees with every true label
    grown = np.concatenate([x, x[:2] + 0.5])
    assert hard_labels(grown, x, y, probs).tolist() == [2, 0, 1, 0, 2]
    assert hard_labels(grown[::-1].copy(), x, y, probs).tolist() == [
        1,
        1,
        1,
        0,
        2,
    ]  # rows not in place: teacher's


def test_default_is_munge_for_tabular_rows_and_original_for_images():
    """Issue 34: the tabular default is the generator that won on the project's tabular
    benchmarks (MUNGE at the paper's settings); image and audio rows keep the training rows."""
    x, nominal = mixed_data()
    tab = make_transfer({}, x, nominal, seed=0)
    same = make_transfer({"method": "munge"}, x, nominal, seed=0)
    assert len(tab) == 10 * len(x)
    np.testing.assert_array_equal(tab, same)  # munge, p 0.5, s 10, minmax: the paper's settings
    cont = x[:, ~nominal].reshape(len(x), 1, 1, -1)
    img = make_transfer({}, cont.reshape(len(x), -1), None, seed=0, image_shape=cont.shape[1:])
    np.testing.assert_array_equal(img, cont.reshape(len(x), -1).astype(np.float32))
    card = describe({}, None, len(x))
    assert card["method"] == "munge" and card["rows"] == 10 * len(x) and card["p"] == 0.5
    assert "benchmarks/RESULTS.md" in card["default"]
    assert describe({"method": "original"}, None, len(x))["default"] is None
    assert describe({}, (1, 8, 8), len(x))["method"] == "original"
