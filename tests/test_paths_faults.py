"""Paths and names that issue 18's sweep found mishandled: listing results creates nothing and needs read access
only, a full disk is named as such and leaves no side file, a folder given as a catalog file, workload names in
another case, and a user's model named by its own file."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from gpuwise.errors import GpuwiseError
from gpuwise.store import open_store, removed_if_it_fails
from tests.helpers import ITEM_MODEL, run_cli, tmpfs


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------ 15, 16, 17. the results database


def test_results_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    code, _, err = run_cli("results", "--db", str(tmp_path / "no" / "such" / "dir" / "r.db"))
    assert code == 2 and err.count("\n") == 1 and "no results database at" in err and "no such file" in err
    assert files_under(tmp_path) == []


def test_results_reads_a_database_and_leaves_no_side_file(tmp_path: Path) -> None:
    open_store(tmp_path / "r.db").close()
    code, out, _ = run_cli("results", "--db", str(tmp_path / "r.db"))
    assert code == 0 and "no results yet" in out
    assert files_under(tmp_path) == ["r.db"]


def test_results_on_a_read_only_file_system(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        open_store(disk / "r.db").close()
        import subprocess

        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        code, out, err = run_cli("results", "--db", str(disk / "r.db"))
        assert code == 0 and "no results yet" in out, err
        assert files_under(disk) == ["r.db"]


def test_a_full_disk_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        open_store(disk / "old.db").close()
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            f.write(b"\0" * (2 << 20))
        for name in ("new.db", "old.db"):
            with pytest.raises(GpuwiseError, match="no space left on device for results database"):
                open_store(disk / name)
        assert files_under(disk) == ["filler", "old.db"]  # no new database, no -wal or -shm
        code, out, _ = run_cli("results", "--db", str(disk / "old.db"))  # listing still works
        assert code == 0 and "no results yet" in out
        assert files_under(disk) == ["filler", "old.db"]


# ------------------------------------------------------------------ 18, 19, 20. names


def test_a_catalog_folder_is_called_a_folder(tmp_path: Path) -> None:
    code, _, err = run_cli("gpus", "--catalog", str(tmp_path))
    assert code == 2 and f"--catalog {tmp_path} is a directory: pass a TOML file" in err


def test_workload_names_are_matched_case_insensitively() -> None:
    from gpuwise.workloads import get_workload

    assert get_workload("RESNET50").name == "resnet50"
    with pytest.raises(GpuwiseError, match="did you mean resnet50"):
        get_workload("RESNT50")


def test_a_users_item_call_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mymodel.py"
    path.write_text(ITEM_MODEL)
    code, _, err = run_cli("profile", f"{path}:build")
    assert code == 2 and err.count("\n") == 1
    assert f"at {path}:M.forward:12 " in err and "gpuwise_user_" not in err


# ------------------------------------------------------------------ found by the sweep (tests/test_sweep.py)


def test_a_model_file_that_is_not_python_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    code, _, err = run_cli("profile", f"{tmp_path / 'notes.txt'}:build")
    assert code == 2 and err.count("\n") == 1 and "is not a Python file (.py)" in err


def test_bench_of_a_misspelt_workload_makes_no_database(tmp_path: Path) -> None:
    code, _, err = run_cli("bench", "RESNT50", "--db", str(tmp_path / "r.db"))
    assert code == 2 and "did you mean resnet50" in err
    assert files_under(tmp_path) == []


def test_an_item_call_under_fused_attention_still_names_the_users_file(tmp_path: Path) -> None:
    """Training profiles with fused attention: its ``__torch_function__`` (gpuwise's) is not the call site."""
    path = tmp_path / "mymodel.py"
    path.write_text(ITEM_MODEL)
    code, _, err = run_cli("train", f"{path}:build", "--steps", "1", "--db", str(tmp_path / "r.db"))
    assert code == 2 and err.count("\n") == 1 and f"at {path}:M.forward:12 " in err


def test_predict_reads_the_database_without_creating_one(tmp_path: Path) -> None:
    code, _, err = run_cli("predict", "resnet18", "--gpu", "T4", "--db", str(tmp_path / "no" / "r.db"))
    assert code == 0, err
    assert files_under(tmp_path) == []


def test_a_disk_that_fills_while_storing_is_named(tmp_path: Path) -> None:
    from tests.helpers import make_result

    with tmpfs(tmp_path / "disk", "1m") as disk, open_store(disk / "r.db") as store:
        store.add(make_result())
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            f.write(b"\0" * (2 << 20))
        with pytest.raises(GpuwiseError, match="no space left on device for results database"):
            for _ in range(200):  # until the -wal cannot grow
                store.add(make_result())
        assert len(store.results()) >= 1  # what was stored before is still there


def test_a_store_a_failing_command_made_goes_with_it_and_one_it_found_stays(tmp_path: Path) -> None:
    """``train --precision auto`` measures the CPU into a new store, then may find a model it cannot trace:
    the store it made, and the folders made for it, go; a store that was there before stays."""
    new = tmp_path / "state" / "gpuwise" / "results.db"
    with pytest.raises(GpuwiseError, match="cannot trace"), removed_if_it_fails(new):
        open_store(new).close()
        raise GpuwiseError("a model fake tensors cannot trace")
    assert not (tmp_path / "state").exists()
    old = tmp_path / "old.db"
    open_store(old).close()
    with pytest.raises(GpuwiseError), removed_if_it_fails(old):
        raise GpuwiseError("a later mistake")
    assert old.exists()
    with removed_if_it_fails(new):
        open_store(new).close()  # no mistake: kept
    assert new.exists()
