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


def _yaml_blocks(text: str) -> list[str]:
    parts = text.split("```yaml\n")[1:]
    return [p[: p.index("```")] for p in parts]


def test_every_loader_and_member_kind_has_a_minimal_example_that_validates():
    import yaml

    import distill.audio  # noqa: F401 - registers audio_folder
    from distill.building import MEMBER_FIELDS, MEMBER_LOADERS, TEACHER_FIELDS
    from distill.data import LOADERS, validate_section
    from ground.recipe import validate
    from tinyship.recipe_doc import DATA_EXAMPLES, MEMBER_EXAMPLES, examples

    assert sorted(DATA_EXAMPLES) == sorted(LOADERS)
    assert list(MEMBER_EXAMPLES) == list(MEMBER_LOADERS)
    for name, line in DATA_EXAMPLES.items():
        cfg = validate_section(yaml.safe_load(line)["data"])
        assert cfg["name"] == name
    data_block, teacher_block = _yaml_blocks(examples())
    assert data_block.count("data: {name: ") == len(LOADERS)
    teacher = yaml.safe_load(teacher_block)["teacher"]
    validate("teacher", teacher, TEACHER_FIELDS)
    kinds = [
        validate(f"teacher.members[{i}]", m, MEMBER_FIELDS)["kind"]
        for i, m in enumerate(teacher["members"])
    ]
    assert kinds == list(MEMBER_LOADERS)


def test_distill_readme_shows_the_same_examples():
    from tinyship.recipe_doc import examples

    readme = (DOC.parents[1] / "distill" / "README.md").read_text()
    for block in _yaml_blocks(examples()):
        assert f"```yaml\n{block}```" in readme, (
            "distill/README.md: paste the blocks of docs/recipe.md"
        )
