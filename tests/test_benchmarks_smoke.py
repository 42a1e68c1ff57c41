"""Benchmarks: each imports and answers --help; the small pure helpers they rely on are right."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from benchmarks.run_all import NAMES


@pytest.mark.parametrize("name", NAMES + ("run_all",))
def test_help(name, capsys):
    mod = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])
    assert exc.value.code == 0
    assert "usage: python -m benchmarks." in capsys.readouterr().out


def test_shift_images_moves_pixels_and_keeps_mass():
    from benchmarks.hinton_mnist import shift_images

    img = np.zeros((1, 28 * 28), np.float32)
    img[0, 14 * 28 + 14] = 1.0
    out = shift_images(np.repeat(img, 200, 0), np.random.default_rng(0))
    pos = out.reshape(200, 28, 28).reshape(200, -1).argmax(1)
    rows, cols = pos // 28, pos % 28
    assert out.sum(1).tolist() == [1.0] * 200
    assert set(rows.tolist()) == set(range(12, 17)) and set(cols.tolist()) == set(range(12, 17))


def test_rmse_against_binary_targets():
    from benchmarks.common import rmse_binary

    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert rmse_binary(p, np.array([1, 0])) == pytest.approx(np.sqrt((0.2**2 + 0.4**2) / 2))


def test_epochs_scale_must_be_positive():
    from benchmarks import hinton_mnist

    with pytest.raises(SystemExit) as exc:
        hinton_mnist.main(["--epochs-scale", "0"])
    assert exc.value.code == 2


def test_digit_shift_moves_each_image_at_most_one_pixel():
    from benchmarks.ensemble_vs_member import shifted

    img = np.zeros((1, 64), np.float32)
    img[0, 3 * 8 + 4] = 1.0
    out = shifted(np.repeat(img, 300, 0), 8, np.random.default_rng(0))
    pos = out.argmax(1)
    assert out.sum(1).tolist() == [1.0] * 300
    assert set((pos // 8).tolist()) == {2, 3, 4} and set((pos % 8).tolist()) == {3, 4, 5}
