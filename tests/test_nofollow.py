"""Reads of files a stranger may have replaced (generator/nofollow.py).

The tree scan and OutDir's checks refuse links and special files before anything is
read; these reads are what still holds when one is planted between the check and the
read: the read itself never follows a link, never blocks on a FIFO, never reads more
than its limit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from generator.nofollow import NotRegular, TooLarge, read_regular
from generator.outdir import OutDir, OutputError
from generator.tree_guard import TreeError, read_tree_file


def test_a_regular_file_is_read_and_an_absent_one_is_none(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert read_regular(tmp_path / "f") == b"x" * 3_000_000
    assert read_regular(tmp_path / "absent") is None
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_regular("f", dir_fd=fd) == b"x" * 3_000_000
    finally:
        os.close(fd)


def test_a_link_is_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("not for posnet\n")
    (tmp_path / "link").symlink_to(secret)
    with pytest.raises(NotRegular) as caught:
        read_regular(tmp_path / "link")
    assert caught.value.st is None
    with pytest.raises(TreeError, match="symbolic link in the build tree"):
        read_tree_file(tmp_path / "link")
    with (
        OutDir(tmp_path, "posnet report", "pass a fresh folder") as out,
        pytest.raises(OutputError, match="symbolic link"),
    ):
        out.read("link")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # nobody writes it: a blocking open would hang
    with pytest.raises(NotRegular) as caught:
        read_regular(tmp_path / "fifo")
    assert caught.value.st is not None and stat.S_ISFIFO(caught.value.st.st_mode)
    with pytest.raises(TreeError, match="not a regular file"):
        read_tree_file(tmp_path / "fifo")


def test_a_file_over_the_limit_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"y" * 101)
    assert read_regular(tmp_path / "big", limit=101) == b"y" * 101
    with pytest.raises(TooLarge):
        read_regular(tmp_path / "big", limit=100)
