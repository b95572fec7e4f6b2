"""keycam's bounded readers, all-or-nothing output sets, interrupts and secret-free messages."""

from __future__ import annotations

import os
import signal
import time

import pytest
from pydantic import Field, ValidationError

from keycam import signals
from keycam.cli import MAX_MESSAGE, format_error, run
from keycam.config import ConfigModel, describe_validation_error
from keycam.fileio import atomic_write
from keycam.limits import MemoryLimitError, check_memory, memory_budget_bytes
from keycam.loading import (
    InputError,
    SharedSecretWarning,
    check_nesting,
    load_toml,
    loads_json,
    open_regular,
    read_bounded,
    warn_if_shared,
)
from keycam.outputs import OutputError, OutputSet

# -- loading -----------------------------------------------------------------------------------


def test_only_regular_files_are_opened(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    t0 = time.perf_counter()
    for path, kind in ((tmp_path / "fifo", "FIFO"), (tmp_path / "dir", "folder"),
                       ("/dev/zero", "device")):  # fmt: skip
        with pytest.raises(InputError, match=kind):
            open_regular(path, what="config")
    assert time.perf_counter() - t0 < 5  # the FIFO did not block
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "missing", what="config")
    with pytest.raises(InputError, match="cannot open"):
        open_regular("a\0b", what="config")


def test_read_bounded_refuses_large_files(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 101)
    with pytest.raises(InputError, match="too large"):
        read_bounded(tmp_path / "f", what="config", max_bytes=100)
    assert read_bounded(tmp_path / "f", what="config", max_bytes=101) == b"x" * 101


def test_nesting_is_counted_outside_strings_and_comments():
    check_nesting('a = "[[[[[[[[[[" # {{{{{{{{{{{{\nb = \'[[[[[[[[\'\n', what="t", syntax="toml",
                  limit=2)  # fmt: skip
    check_nesting('a = """\n[[[[[[\n\\"""[[[["""\nb = [[1]]\n', what="t", syntax="toml", limit=2)
    with pytest.raises(InputError, match="nested more than 2"):
        check_nesting("a = [[[1]]]", what="t", syntax="toml", limit=2)
    with pytest.raises(InputError, match="nested"):
        check_nesting("a = {b = {c = {d = 1}}}", what="t", syntax="toml", limit=2)
    check_nesting('{"a": "[[[[\\"[[[["}', what="j", syntax="json", limit=1)
    with pytest.raises(InputError, match="nested"):
        check_nesting('{"a": [[1]]}', what="j", syntax="json", limit=2)


def test_load_toml_refuses_deep_documents_and_says_why(tmp_path):
    (tmp_path / "deep.toml").write_text("a = " + "[" * 500 + "]" * 500)
    (tmp_path / "dotted.toml").write_text(".".join(["k"] * 100) + " = 1\n")
    (tmp_path / "bad.toml").write_text("a = = 1")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    for name, match in (("deep", "nested"), ("dotted", "nested"), ("bad", "not valid TOML"),
                        ("bin", "UTF-8")):  # fmt: skip
        with pytest.raises(InputError, match=match):
            load_toml(tmp_path / f"{name}.toml")
    (tmp_path / "ok.toml").write_text("[a]\nb = [[1, 2], [3]]\n")
    assert load_toml(tmp_path / "ok.toml") == {"a": {"b": [[1, 2], [3]]}}


def test_loads_json_checks_depth_first():
    assert loads_json(b'{"a": [1, 2]}', what="h") == {"a": [1, 2]}
    with pytest.raises(InputError, match="nested"):
        loads_json("[" * 100_000 + "]" * 100_000, what="h")
    with pytest.raises(InputError, match="not valid JSON"):
        loads_json("{", what="h")


def test_shared_secret_warning(tmp_path):
    with pytest.warns(SharedSecretWarning, match="chmod 600"):
        warn_if_shared(tmp_path / "k.key", 0o100644)
    warn_if_shared(tmp_path / "k.key", 0o100600)  # no warning (pytest fails on unexpected ones? no)


# -- messages never leak secrets ------------------------------------------------------------------


class _Face(ConfigModel):
    rows: int = Field(8, ge=1)
    seed: int = Field(0, ge=0)


class _Cam(ConfigModel):
    faceplate: _Face = Field(default_factory=_Face)
    label: str = "x"


def test_validation_messages_hide_secret_values_and_tables():
    with pytest.raises(ValidationError) as info:
        _Cam.model_validate({"faceplate": {"rows": -3, "seed": -987654321, "rowz": 987654321}})
    line = describe_validation_error(info.value)
    assert "faceplate.rows" in line and "(got -3)" in line
    assert "faceplate.seed" in line and "secret" in line
    assert "faceplate.rowz" in line and "unknown field" in line
    assert "987654321" not in line and "{" not in line
    with pytest.raises(ValidationError) as info:
        _Cam.model_validate({"faceplate": [1, 2, 987654321]})
    assert "987654321" not in format_error(info.value)


def test_format_error_is_one_bounded_line():
    msg = format_error(ValueError("a\nb " + "x" * 5000))
    assert "\n" not in msg and len(msg) <= MAX_MESSAGE
    assert "out of memory" in format_error(MemoryError())
    assert "nested" in format_error(RecursionError())


# -- limits ---------------------------------------------------------------------------------------


def test_memory_budget_from_the_environment(monkeypatch):
    monkeypatch.delenv("KEYCAM_MAX_MEMORY_MB", raising=False)
    assert memory_budget_bytes() == 768 << 20
    monkeypatch.setenv("KEYCAM_MAX_MEMORY_MB", "100")
    assert memory_budget_bytes() == 100 << 20
    with pytest.raises(MemoryLimitError, match="KEYCAM_MAX_MEMORY_MB"):
        check_memory("this", 101 << 20, reduce="that")
    check_memory("this", 100 << 20, reduce="that")
    for bad in ("0", "x", "-5", "1e3"):
        monkeypatch.setenv("KEYCAM_MAX_MEMORY_MB", bad)
        with pytest.raises(ValueError, match="KEYCAM_MAX_MEMORY_MB"):
            memory_budget_bytes()


# -- output sets ----------------------------------------------------------------------------------


def test_plan_refuses_clashes_inputs_folders_and_existing_files(tmp_path):
    (tmp_path / "in.key").write_bytes(b"key")
    os.link(tmp_path / "in.key", tmp_path / "hard.bin")
    os.symlink(tmp_path / "in.key", tmp_path / "soft.bin")
    (tmp_path / "old.txt").write_text("old")
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    out = OutputSet(inputs=[tmp_path / "in.key"])
    out.plan(tmp_path / "a.png")
    cases = [
        (tmp_path / "A.PNG", "two outputs"),
        (tmp_path / "x" / ".." / "a.png", "two outputs"),
        (tmp_path / "in.key", "is the input"),
        (tmp_path / "hard.bin", "is the input"),
        (tmp_path / "soft.bin", "is the input"),
        (tmp_path / "dir", "is a folder"),
        (tmp_path / "old.txt", "already exists"),
        (tmp_path / "file" / "x.png", "is a file"),
    ]
    for path, match in cases:
        with pytest.raises(OutputError, match=match):
            out.plan(path)
    forced = OutputSet(overwrite=True, inputs=[tmp_path / "in.key"])
    forced.plan(tmp_path / "old.txt")
    with pytest.raises(OutputError, match="is the input"):
        forced.plan(tmp_path / "hard.bin")


def test_nothing_appears_before_commit_and_everything_after(tmp_path):
    with OutputSet() as out:
        a, b = out.plan(tmp_path / "new" / "deep" / "a.txt"), out.plan(tmp_path / "b.txt")
        out.write_bytes(a, b"A")
        with out.staging(b) as tmp:
            tmp.write_bytes(b"B")
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["new"]
        assert out.commit() == [a, b]
    assert a.read_bytes() == b"A" and b.read_bytes() == b"B"
    assert not [p for p in tmp_path.rglob(".*")]


def test_an_error_removes_staged_files_and_created_folders(tmp_path):
    with pytest.raises(RuntimeError), OutputSet() as out:
        a = out.plan(tmp_path / "new" / "deep" / "a.txt")
        out.write_bytes(a, b"A")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with OutputSet() as out:  # no commit: nothing either
        out.write_bytes(out.plan(tmp_path / "x" / "b.txt"), b"B")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_commit_restores_replaced_files(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    real_replace = os.replace
    calls = []

    def flaky(src, dst, *args, **kw):
        calls.append(dst)
        if len(calls) == 2 and str(dst).endswith("b.txt"):
            raise OSError(28, "No space left on device", str(src))
        return real_replace(src, dst, *args, **kw)

    with pytest.raises(OSError) as info, OutputSet(overwrite=True) as out:
        for name in ("a.txt", "b.txt", "c.txt"):
            out.write_bytes(out.plan(tmp_path / name), name.encode())
        monkeypatch.setattr(os, "replace", flaky)
        out.commit()
    monkeypatch.setattr(os, "replace", real_replace)
    assert info.value.filename == str(tmp_path / "b.txt")  # the real name, not the temporary
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert (tmp_path / "b.txt").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_commit_refuses_a_file_that_appeared_meanwhile(tmp_path):
    with pytest.raises(OutputError, match="appeared while"), OutputSet() as out:
        a, b = out.plan(tmp_path / "a.txt"), out.plan(tmp_path / "b.txt")
        out.write_bytes(a, b"A")
        out.write_bytes(b, b"B")
        b.write_text("someone else's")
        out.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]
    assert b.read_text() == "someone else's"


def test_write_errors_name_the_real_file(tmp_path):
    target = tmp_path / "frame.png"
    with pytest.raises(OSError) as info, atomic_write(target) as fh:
        fh.write(b"x")
        raise OSError(28, "No space left on device")
    assert info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


# -- interrupts -----------------------------------------------------------------------------------


def test_deferred_holds_a_signal_until_the_block_ends():
    done = []
    with pytest.raises(KeyboardInterrupt), signals.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        done.append("finished")
    assert done == ["finished"]


def test_run_maps_interrupts_and_broken_pipes(capsys):
    def interrupted(argv):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)

    assert run(interrupted, []) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == "error: interrupted; no partial output was left\n"

    def out_of_memory(argv):
        raise MemoryError

    assert run(out_of_memory, []) == 2
    assert capsys.readouterr().err.startswith("error: out of memory")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_refused_run_prints_only_its_error_and_success_prints_warnings(capsys):
    import warnings

    from keycam.loading import KeycamWarning

    def warns_then(fail):
        def main(argv):
            warnings.warn("mode 0644", KeycamWarning, stacklevel=1)
            if fail:
                raise ValueError("bad")
            return 0

        return main

    assert run(warns_then(True), []) == 2
    assert capsys.readouterr().err == "error: bad\n"
    assert run(warns_then(False), []) == 0
    assert capsys.readouterr().err == "warning: mode 0644\n"
