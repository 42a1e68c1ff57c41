"""Paths in a recipe are relative to the recipe file's folder (absolute ones used as they are)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from distill.pipeline import run as distill
from ground.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def test_data_path_is_relative_to_the_recipe_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    (tmp_path / "recipes").mkdir()
    recipe = {
        "data": {"name": "npz", "path": "../data/d.npz"},
        "teacher": {"library": ["logreg"], "selection": "none"},
        "transfer": {"method": "original"},
        "student": {"kind": "mlp", "hidden": [4]},
        "train": {"epochs": 1, "baseline": False},
    }
    (tmp_path / "recipes" / "r.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.chdir(REPO)  # not the recipe's folder: the path must still resolve
    res = distill(tmp_path / "recipes" / "r.yaml", tmp_path / "run", progress=False)
    card = json.loads((res.run_dir / "student" / "card.json").read_text())
    assert card["data"]["source"]["path"] == str(tmp_path / "data" / "d.npz")
    with pytest.raises(UserError, match=r"relative to the recipe file's folder \(.*recipes\)"):
        (tmp_path / "recipes" / "r2.yaml").write_text(
            yaml.safe_dump({**recipe, "data": {"name": "npz", "path": "data/d.npz"}})
        )
        distill(tmp_path / "recipes" / "r2.yaml", tmp_path / "run2", progress=False)


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_paths_resolve_from_their_folder(recipe, shared_data):
    section = yaml.safe_load(recipe.read_text()).get("data") or {}
    for key in ("path", "test_path"):
        if section.get(key):
            assert (recipe.parent / section[key]).exists(), (recipe.name, section[key])
