"""A preset name that does not exist is an error for every trainer, before any work."""

import pytest

from dalle.cli import main


@pytest.mark.parametrize("stage", ["dvae", "dalle", "clip"])
def test_an_unknown_preset_is_refused(stage, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", stage, "--preset", "shapez", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "preset named 'shapez'" in err and "shapes" in err  # the known ones are listed
    assert not out.exists()
