"""Atomic writes of files and folders: no temporary left behind, the target whole or untouched, a lost race."""

from __future__ import annotations

import os
import subprocess
import sys

import datasets
import pytest

from robustbench_bilateral.atomic import atomic_file, atomic_folder, temporary_sibling, write_atomic
from robustbench_bilateral.data import load_source, text_lines
from robustbench_bilateral.data.arrow_cache import cached_split


def leftovers(folder) -> list[str]:
    """Names of temporary files or folders under ``folder``."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(".*.tmp"))


def test_temporary_names_carry_the_process_id_and_differ(tmp_path):
    first, second = temporary_sibling(tmp_path / "a.csv"), temporary_sibling(tmp_path / "a.csv")
    assert first != second and first.parent == tmp_path
    assert first.name.startswith(f".a.csv.{os.getpid()}-") and first.name.endswith(".tmp")


def test_a_file_is_replaced_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "results.csv"
    write_atomic(target, "old\n")
    with atomic_file(target) as partial:
        assert partial.parent == target.parent and not partial.exists()
        partial.write_text("new\n")
        assert target.read_text() == "old\n", "the target changes only when the block ends"
    assert target.read_text() == "new\n" and leftovers(tmp_path) == []


def test_an_exception_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "results.csv"
    write_atomic(target, b"old\n")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic_file(target) as partial:
            partial.write_text("half a fi")
            raise RuntimeError("disk gone")
    assert target.read_bytes() == b"old\n" and leftovers(tmp_path) == []


def test_a_folder_appears_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "cache" / "wordnet"
    with atomic_folder(target) as partial:
        (partial / "deep").mkdir()
        (partial / "deep" / "data.noun").write_text("noun\n")
        (partial / "lexnames").write_text("00\tadj.all\t3\n")
        assert not target.exists()
    assert (target / "deep" / "data.noun").read_text() == "noun\n" and (target / "lexnames").exists()
    assert leftovers(tmp_path) == []


def test_an_exception_mid_build_leaves_neither_folder_nor_temporary(tmp_path):
    target = tmp_path / "wordnet"
    with pytest.raises(OSError):
        with atomic_folder(target) as partial:
            (partial / "lexnames").write_text("00\tadj.all\t3\n")
            (partial / "missing" / "data.noun").write_text("noun\n")
    assert not target.exists() and leftovers(tmp_path) == []


def test_a_folder_built_by_another_process_meanwhile_is_kept(tmp_path):
    """Another process builds the same folder while this one is still building: its copy stays, ours goes."""
    target = tmp_path / "arrow" / "train"
    other = (
        "import sys; from pathlib import Path; from robustbench_bilateral.atomic import atomic_folder\n"
        "with atomic_folder(Path(sys.argv[1])) as partial:\n"
        "    (partial / 'owner').write_text('other')\n"
    )
    with atomic_folder(target) as partial:
        (partial / "owner").write_text("this")
        subprocess.run([sys.executable, "-c", other, str(target)], check=True)
        assert (target / "owner").read_text() == "other"
    assert (target / "owner").read_text() == "other" and sorted(os.listdir(target)) == ["owner"]
    assert leftovers(tmp_path) == []


def test_an_arrow_split_is_built_once_then_read_from_its_folder(tmp_path, monkeypatch):
    lines = text_lines(load_source("shakespeare").split("test"))[:40]
    monkeypatch.setenv("BILAT_EVAL_CACHE", str(tmp_path))
    built = []

    def build() -> datasets.Dataset:
        built.append(1)
        return datasets.Dataset.from_dict({"text": lines})

    first = cached_split("unit", "test", build)
    second = cached_split("unit", "test", build)
    assert first["text"] == second["text"] == lines
    assert len(built) == 1 and leftovers(tmp_path) == []
