import pytest

from ground.errors import MissingDependencyError, UserError, require
from ground.recipe import Field, load_recipe, validate

FIELDS = {
    "arch": Field(str, "mlp", choices=("mlp", "cnn", "dscnn")),
    "epochs": Field(int, 10, min=1),
    "lr": Field(float, 1e-3, min=0.0),
    "hidden": Field(list, None),
    "data": Field(str, doc="dataset name"),
}


def test_defaults_filled_and_int_promoted_to_float():
    out = validate("student", {"data": "digits", "lr": 1}, FIELDS)
    assert out == {"arch": "mlp", "epochs": 10, "lr": 1.0, "hidden": None, "data": "digits"}


@pytest.mark.parametrize(
    "given, message",
    [
        (
            {"data": "d", "arch": "resnet"},
            r"'student.arch' must be one of 'mlp', 'cnn', 'dscnn'; got 'resnet'",
        ),
        ({"data": "d", "epochs": 0}, r"'student.epochs' must be in the range \[1, inf\]; got 0"),
        ({"data": "d", "epochs": "5"}, r"'student.epochs' must be int; got str '5'"),
        ({"data": "d", "epochs": True}, r"'student.epochs' must be int; got bool True"),
        ({"data": "d", "epoch": 5}, r"'student.epoch' is not known. Did you mean 'epochs'\?"),
        ({"data": "d", "lr": float("nan")}, r"'student.lr' must be a finite number"),
        ({}, r"'student.data' is required \(dataset name\)"),
    ],
)
def test_bad_values_name_key_value_and_allowed(given, message):
    with pytest.raises(UserError, match=message):
        validate("student", given, FIELDS)


def test_load_recipe_checks_sections(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("data: {name: digits}\nstudnet: {arch: mlp}\n")
    with pytest.raises(UserError, match="section 'studnet' .* Did you mean 'student'"):
        load_recipe(p)
    p.write_text("data: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_recipe(p)
    with pytest.raises(UserError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    p.write_text("data: {name: digits}\n")
    assert load_recipe(p)["name"] == "r"


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r"pip install 'tinyship\[coreml\]'"):
        require("definitely_not_installed_module_xyz", "coreml", "Core ML export")


# ---- limits on what a recipe may hold (issue 14 item 7) ----


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + f"\nstudent: *a{levels - 1}\n"


def test_yaml_alias_bomb_is_refused_before_expansion(tmp_path):
    import time

    p = tmp_path / "bomb.yaml"
    p.write_text(_bomb())
    assert p.stat().st_size < 3000
    t0 = time.perf_counter()
    with pytest.raises(
        UserError, match=r"uses the YAML alias '\*a0' at line 2; tinyship refuses aliases"
    ):
        load_recipe(p)
    assert time.perf_counter() - t0 < 1.0


def test_recipe_over_1_mib_is_refused(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("name: big\n# " + "x" * (1 << 20) + "\n")
    with pytest.raises(UserError, match=r"is 1048589 bytes; the limit is 1048576"):
        load_recipe(p)


def test_non_utf8_recipe_is_a_user_error(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(
        UserError, match=r"is not UTF-8 text \(byte 9: b'\\xe9'\)\. Save it as UTF-8"
    ):
        load_recipe(p)


def test_deeply_nested_recipe_is_a_user_error(tmp_path):
    p = tmp_path / "deep.yaml"
    p.write_text("student: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(UserError, match=r"nests too deeply|is not valid YAML"):
        load_recipe(p)
