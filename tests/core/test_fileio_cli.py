"""Shared plumbing: atomic writes and the one-line CLI error contract."""

import os
import stat

import pytest
from pydantic import BaseModel, ConfigDict, Field

from keycam.cli import CLIError, format_error, run
from keycam.fileio import atomic_write, write_bytes_atomic


def test_atomic_write_sets_mode_and_content(tmp_path):
    p = write_bytes_atomic(tmp_path / "secret.key", b"abc", mode=0o600)
    assert p.read_bytes() == b"abc"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["secret.key"]


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "frame.png"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_atomic_write_refuses_overwrite(tmp_path):
    target = tmp_path / "device.key"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_bytes_atomic(target, b"new", overwrite=False)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["device.key"]


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    exposure_s: float = Field(gt=0)


def test_run_turns_bad_input_into_one_line(capsys):
    def bad_value(argv):
        raise ValueError("exposure_s must be > 0 s, got -1")

    def bad_config(argv):
        _Cfg(exposure_s=-1)

    def cli_error(argv):
        raise CLIError("no scene")

    for fn in (bad_value, bad_config, cli_error):
        assert run(fn, []) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        _Cfg(exposure_s=-1)
    assert "exposure_s" in format_error(info.value)


def test_run_passes_success_status():
    assert run(lambda argv: None, []) == 0
    assert run(lambda argv: 3, []) == 3
