"""Files cfnbuild writes and reads back: a failed write is one line with the old file intact and no
temporary file left; a damaged template is one line naming where; a damaged or unwritable cache
entry is a warning, once, and a miss."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from cfnbuild.errors import CfnbuildError, ReadFailed, UsageError, WriteFailed
from cfnbuild.files import read_cache_entry, read_json, read_json_text, write_atomic, write_cache_entry


def full_disk_under(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the disk holding ``directory`` full, as ``write(2)`` reports it.

    A real full disk is not something a test can make, and /dev/full cannot hold the temporary
    file write_atomic renames, so ``os.write`` on a file under ``directory`` writes part of what
    it was given (as a nearly full disk does) and then fails with the real ENOSPC; writes
    anywhere else (pytest's own) are untouched.
    """
    real_write = os.write
    started: set[int] = set()

    def write(fd: int, data: bytes | memoryview) -> int:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if not target.startswith(str(directory) + os.sep):
            return real_write(fd, data)
        if fd not in started and len(data) > 1:
            started.add(fd)
            return real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


def test_a_write_on_a_full_disk_names_the_path_and_reason_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "output/dev/webapp.json"
    target.parent.mkdir(parents=True)
    target.write_text('{"old": true}\n')
    full_disk_under(tmp_path, monkeypatch)
    with pytest.raises(WriteFailed) as raised:
        write_atomic(target, '{"new": true}\n' * 100)
    assert str(raised.value) == (
        "cannot write output/dev/webapp.json: [Errno 28] No space left on device; "
        "free some space and run again (the old file is unchanged)"
    )
    assert raised.value.exit_code == 1
    assert target.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["webapp.json"]


def test_a_write_where_a_file_stands_in_place_of_the_directory_names_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "output").mkdir()
    (tmp_path / "output/dev").write_text("not a directory\n")
    with pytest.raises(WriteFailed) as raised:
        write_atomic(tmp_path / "output/dev/webapp.json", "{}\n")
    assert str(raised.value) == (
        "cannot write output/dev/webapp.json: output/dev is a file, not a directory; "
        "move it away and run again (nothing was written)"
    )
    assert (tmp_path / "output/dev").read_text() == "not a directory\n"
    assert sorted(p.name for p in (tmp_path / "output").iterdir()) == ["dev"]


def test_a_write_into_a_read_only_directory_says_to_make_it_writable(tmp_path, monkeypatch):
    """The tests run as root, whom chmod does not stop; a read-only mount (EROFS) stops anyone,
    so creating the temporary file fails as it does on one."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "output/webapp.json"
    target.parent.mkdir()
    target.write_text("old\n")

    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(WriteFailed) as raised:
        write_atomic(target, "new\n")
    assert str(raised.value) == (
        "cannot write output/webapp.json: [Errno 30] Read-only file system; "
        "make output writable and run again (the old file is unchanged)"
    )
    assert target.read_text() == "old\n"


def test_a_write_over_a_directory_names_it_and_leaves_no_temp_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out/webapp.json").mkdir(parents=True)
    with pytest.raises(WriteFailed) as raised:
        write_atomic(tmp_path / "out/webapp.json", "{}\n")
    assert str(raised.value) == (
        "cannot write out/webapp.json: out/webapp.json is a directory; move it away and run again (nothing was written)"
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["webapp.json"]


def test_a_template_that_is_not_valid_json_is_named_with_its_line_and_column(tmp_path):
    path = tmp_path / "output/dev/webapp.json"
    path.parent.mkdir(parents=True)
    path.write_text('{\n  "Resources": {\n    "Topic": {"Type": "AWS::SNS::Topic"\n')  # cut short
    with pytest.raises(ReadFailed) as raised:
        read_json(path, root=tmp_path, environment="dev")
    assert str(raised.value) == (
        "output/dev/webapp.json: not valid JSON at line 4 column 1 (Expecting ',' delimiter); "
        "run 'cfnbuild build --env dev' to write it again"
    )
    assert isinstance(raised.value, UsageError)
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "output/webapp.json does not exist; run 'cfnbuild build' first"),
        (
            lambda p: p.write_text("[1, 2]"),
            "output/webapp.json: an array, not a JSON object; run 'cfnbuild build' to write it again",
        ),
        (
            lambda p: p.write_bytes(b'{"a": "\xff"}'),
            "output/webapp.json: not UTF-8 text (invalid start byte); run 'cfnbuild build' to write it again",
        ),
        (
            lambda p: p.mkdir(),
            "cannot read output/webapp.json: [Errno 21] Is a directory; run 'cfnbuild build' to write it again",
        ),
    ],
    ids=["missing", "not an object", "not utf-8", "unreadable"],
)
def test_a_template_that_cannot_be_used_is_one_line_saying_to_build(tmp_path, make, message):
    path = tmp_path / "output/webapp.json"
    path.parent.mkdir()
    make(path)
    with pytest.raises(ReadFailed) as raised:
        read_json_text(path, root=tmp_path)
    assert str(raised.value) == message


def test_a_good_template_is_read_with_its_text(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"Resources": {}}\n')
    assert read_json_text(path, root=tmp_path) == ('{"Resources": {}}\n', {"Resources": {}})


def test_a_cache_entry_that_is_not_json_is_a_miss_warned_about_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    entry = tmp_path / "cache/ab12.json"
    entry.parent.mkdir()
    entry.write_text("")
    assert read_cache_entry(entry) is None
    assert read_cache_entry(entry) is None
    assert capsys.readouterr().err == (
        "warning: cache/ab12.json is not a valid cache entry (Expecting value: line 1 column 1); recomputing it\n"
    )
    assert read_cache_entry(tmp_path / "cache/none.json") is None  # no entry: a plain miss
    assert capsys.readouterr().err == ""


def test_a_cache_that_cannot_be_written_is_warned_about_once_and_gone_without(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache").write_text("a file where the cache directory should be\n")
    assert write_cache_entry(tmp_path / "cache/one.json", "[]") is False
    assert write_cache_entry(tmp_path / "cache/two.json", "[]") is False
    assert capsys.readouterr().err == (
        "warning: cannot write to the cache cache/ (cache is a file, not a directory); carrying on without caching\n"
    )


def test_write_failed_is_an_expected_error_the_cli_prints_as_one_line():
    assert issubclass(WriteFailed, CfnbuildError)
    assert not issubclass(WriteFailed, UsageError)  # exit code 1: the input was fine, the disk was not
