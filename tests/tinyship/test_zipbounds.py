"""Zip archives of the run directory are bounded from their directory before reading (issue 41)."""

from __future__ import annotations

import pytest

from ground import rundir
from ground.errors import UserError


def test_an_npz_bomb_in_the_run_directory_is_refused_before_inflating(tmp_path):
    """Issue 41: archives are bounded before reading, .npz files of the run directory too."""
    import zipfile

    path = tmp_path / "holdout.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("x.npy", "w") as fh:
        for _ in range(64):
            fh.write(bytes(1 << 20))  # 64 MiB of zeros deflate to about 64 KB
    assert path.stat().st_size < 1 << 20
    with pytest.raises(
        UserError, match=r"its entries inflate to 67108864 bytes .* a decompression bomb"
    ):
        rundir.read_npz(path, "holdout set", ("x",))
