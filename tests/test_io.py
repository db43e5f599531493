import pytest

from dalle.utils.io import atomic_path, atomic_write_text


def test_atomic_write_gives_the_mode_of_a_plain_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode == plain.stat().st_mode


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_files_get_the_mode_of_a_plain_open(tmp_path):
    import os

    import torch
    from safetensors.torch import save_file

    from dalle.utils.io import atomic_path

    mask = os.umask(0o022)
    try:
        target = tmp_path / "w.safetensors"
        with atomic_path(target) as tmp:
            save_file({"x": torch.zeros(2)}, str(tmp))  # a writer that makes its own file
        assert target.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(mask)


def test_folders_renamed_into_place_get_the_mode_of_a_plain_mkdir(tmp_path):
    import os

    import torch

    from dalle.training.checkpoint import save_checkpoint
    from dalle.utils.io import temp_dir

    mask = os.umask(0o022)
    try:
        assert temp_dir(tmp_path, ".x.").stat().st_mode & 0o777 == 0o755
        step = save_checkpoint(tmp_path / "run", 3, {"model": {"w": torch.ones(2)}}, {})
        assert step.name == "step_0000003" and step.stat().st_mode & 0o777 == 0o755
        assert (step / "model.safetensors").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(mask)


def test_the_umask_is_read_as_the_os_has_it():
    import os

    from dalle.utils.io import current_umask

    mask = os.umask(0o027)
    try:
        assert current_umask() == 0o027 and current_umask() == 0o027
    finally:
        os.umask(mask)
