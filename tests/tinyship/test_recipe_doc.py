"""docs/recipe.md is generated from the stages' field tables; it must not drift from them."""

from pathlib import Path

from tinyship.recipe_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipe.md"


def test_committed_reference_matches_the_field_tables():
    assert DOC.read_text() == render(), (
        "docs/recipe.md is stale: run `python -m tinyship.recipe_doc > docs/recipe.md`"
    )


def test_every_recipe_key_is_documented():
    undocumented = [
        line for line in render().splitlines() if line.startswith("| `") and line.endswith("|  |")
    ]
    assert not undocumented, undocumented
