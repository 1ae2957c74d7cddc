"""The results store: exact round trips, filters, migrations, errors, parallel writers, export, CLI."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import re
import sqlite3
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpuwise.bench.result import BenchResult, Ceilings, Hardware
from gpuwise.cli.app import get_app
from gpuwise.errors import GpuwiseError
from gpuwise.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    csv_columns,
    export_csv,
    export_json,
    flat_dict,
    migrate,
    open_store,
)
from tests.helpers import make_result


def make_cpu_result(**overrides: Any) -> BenchResult:
    """A CPU measurement of a sequence workload: the None-able fields the other way round."""
    cpu = make_result(
        workload="gpt2", family="language (transformer)", sample_unit="token", batch_size=2, seq_len=128,
        image_size=None, precision="fp32", device="cpu", device_name="AMD EPYC 9454 48-Core Processor",
        tokens_per_s=2 * 128 / 0.1005, peak_tflops=None, mfu=None, peak_reserved_bytes=None, batch_size_auto=False,
        hardware=Hardware(cpu_model="AMD EPYC 9454 48-Core Processor", cpu_cores=2, cpu_threads=2, ram_bytes=8 << 30),
    )
    return replace(cpu, **overrides)


def test_full_record_round_trips_exactly(tmp_path: Path) -> None:
    results = [make_result(), make_cpu_result(created_at="2025-03-02T00:00:00+00:00")]
    with open_store(tmp_path / "r.db") as store:
        ids = [store.add(r) for r in results]
    with open_store(tmp_path / "r.db") as store:
        got = store.results()
    assert ids[0] != ids[1]
    # newest first, each with its row id, every other field equal (nested records and the step-time tuple too)
    assert got == [replace(results[1], id=ids[1]), replace(results[0], id=ids[0])]
    assert isinstance(got[1].timing.step_times_s, tuple)
    assert got[1].timing.step_times_s == results[0].timing.step_times_s


def test_add_ignores_the_records_own_id(tmp_path: Path) -> None:
    with open_store(tmp_path / "r.db") as store:
        row_id = store.add(make_result(id=999))
        assert [r.id for r in store.results()] == [row_id] != [999]


def test_filters_by_workload_and_device(tmp_path: Path) -> None:
    with open_store(tmp_path / "r.db") as store:
        store.add(make_result(created_at="2025-03-01T00:00:00+00:00"))
        store.add(make_result(device="cuda:1", created_at="2025-03-03T00:00:00+00:00"))
        store.add(make_cpu_result(created_at="2025-03-02T00:00:00+00:00"))
        store.add(make_cpu_result(workload="resnet50", created_at="2025-03-04T00:00:00+00:00"))

        def seen(**kw: str) -> list[tuple[str, str, str]]:
            return [(r.workload, r.device, r.created_at[:10]) for r in store.results(**kw)]

        assert seen(workload="resnet50") == [
            ("resnet50", "cpu", "2025-03-04"),
            ("resnet50", "cuda:1", "2025-03-03"),
            ("resnet50", "cuda:0", "2025-03-01"),
        ]
        assert seen(device="cpu") == [("resnet50", "cpu", "2025-03-04"), ("gpt2", "cpu", "2025-03-02")]
        assert seen(device="cuda:1") == [("resnet50", "cuda:1", "2025-03-03")]
        assert [d for _, d, _ in seen(device="cuda")] == ["cuda:1", "cuda:0"]  # the kind matches every index
        assert [d for _, d, _ in seen(device="h100")] == ["cuda:1", "cuda:0"]  # part of the name, any case
        assert seen(workload="gpt2", device="cuda") == []
        assert seen(workload="nope") == []
        assert seen(device="cu%") == []  # LIKE wildcards in the filter are literal


def test_ceilings_latest_per_device_and_machine(tmp_path: Path) -> None:
    old = Ceilings("cuda:0", "NVIDIA H100", {"float32": 51.2, "bfloat16": 742.3}, 3012.5, "2025-03-01T00:00:00+00:00")
    new = replace(old, matmul_tflops={"float32": 52.0, "tf32": 380.1}, measured_at="2025-03-05T00:00:00+00:00")
    other = replace(old, device="cpu", device_name="EPYC", matmul_tflops={"float32": 2.5}, memory_gbps=80.0)
    with open_store(tmp_path / "r.db") as store:
        assert store.get_ceilings("cuda:0", "host-a") is None
        store.put_ceilings(new, "host-a")
        store.put_ceilings(old, "host-a")  # stored later, measured earlier
        store.put_ceilings(other, "host-a")
        store.put_ceilings(replace(old, memory_gbps=1.0), "host-b")
        assert store.get_ceilings("cuda:0", "host-a") == new
        assert store.get_ceilings("cpu", "host-a") == other
        assert store.get_ceilings("cuda:0", "host-b") == replace(old, memory_gbps=1.0)
        assert store.get_ceilings("cpu", "host-b") is None


def _v1_database(path: Path, result: BenchResult) -> None:
    """A database as the first release wrote it: schema 1, one result, no ceilings table."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    record = {k: v for k, v in json.loads(json.dumps(asdict(result))).items() if k != "id"}
    conn.execute(
        "INSERT INTO results (created_at, workload, device, device_name, precision, batch_size, gpuwise_version,"
        " record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (result.created_at, result.workload, result.device, result.device_name, result.precision, result.batch_size,
         result.software.gpuwise, json.dumps(record)),
    )
    conn.close()


def _tables(path: Path) -> tuple[int, set[str]]:
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    return version, names - {"sqlite_sequence"}


def test_migrates_a_version_1_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    result = make_result()
    _v1_database(path, result)
    assert _tables(path) == (1, {"results"})
    with open_store(path) as store:
        assert store.results() == [replace(result, id=1)]  # the data survives
        assert store.get_ceilings("cuda:0", "host") is None  # and the v2 table works
        store.put_ceilings(Ceilings("cuda:0", "H100", {"float32": 51.0}, 3000.0, "2025-03-01T00:00:00Z"), "host")
        second = store.add(make_cpu_result())
    assert second == 2
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2
    assert _tables(path) == (SCHEMA_VERSION, {"results", "ceilings"})


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(GpuwiseError, match=r"future\.db has schema version 999, newer .*upgrade gpuwise.*--db"):
        open_store(path)


def test_an_uncreatable_directory_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(GpuwiseError, match=r"cannot create the directory of results database .*file/sub/r\.db.*--db"):
        open_store(blocker / "sub" / "r.db")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GpuwiseError, match=r"is a directory: .*--db"):
        open_store(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes read-only files anyway")
def test_read_only_file_and_directory_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    open_store(path).close()
    path.chmod(0o444)
    with pytest.raises(GpuwiseError, match=r"r\.db is not writable: .*--db"):
        open_store(path)
    path.chmod(0o644)
    ro_dir = tmp_path / "ro"
    ro_dir.mkdir()
    ro_dir.chmod(0o555)
    try:
        with pytest.raises(GpuwiseError, match=r"directory of results database .*ro/r\.db is not writable: .*--db"):
            open_store(ro_dir / "r.db")
    finally:
        ro_dir.chmod(0o755)


def test_no_write_permission_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same checks where chmod cannot show them (root): the permission answer is what is asked."""
    path = tmp_path / "r.db"
    open_store(path).close()
    monkeypatch.setattr("gpuwise.store.os.access", lambda p, mode: Path(p) != path)
    with pytest.raises(GpuwiseError, match=r"r\.db is not writable: .*--db"):
        open_store(path)
    monkeypatch.setattr("gpuwise.store.os.access", lambda p, mode: Path(p) != tmp_path)
    with pytest.raises(GpuwiseError, match=r"directory of results database .*new\.db is not writable: .*--db"):
        open_store(tmp_path / "new.db")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not SQLite\n" * 100)
    with pytest.raises(GpuwiseError, match=r"notes\.db is not a gpuwise results database .*--db"):
        open_store(path)
    assert path.read_bytes().startswith(b"these are my notes")  # and it is left alone


def test_env_var_and_explicit_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUWISE_DB", str(tmp_path / "env" / "from-env.db"))
    with open_store() as store:
        assert store.path == tmp_path / "env" / "from-env.db"
        store.add(make_result())
    with open_store(tmp_path / "explicit.db") as store:  # an explicit path wins over the env var
        assert store.results() == []


def test_default_path_is_in_the_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    from gpuwise.store import default_db_path

    monkeypatch.delenv("GPUWISE_DB", raising=False)
    assert default_db_path() == Path(platformdirs.user_data_dir("gpuwise")) / "results.db"


NUM_WRITERS = 4
NUM_INSERTS = 50


def _writer(path: str, worker: int, barrier: Any) -> None:
    barrier.wait()  # every process opens the new, empty file at once: the migration races too
    with open_store(Path(path)) as store:
        for i in range(NUM_INSERTS):
            store.add(make_result(workload=f"w{worker}", batch_size=i + 1, created_at=f"2025-03-01T00:00:{i:02d}Z"))


def test_parallel_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(NUM_WRITERS)
    procs = [ctx.Process(target=_writer, args=(str(path), w, barrier)) for w in range(NUM_WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * NUM_WRITERS
    with open_store(path) as store:
        results = store.results()
    assert len(results) == NUM_WRITERS * NUM_INSERTS
    assert len({r.id for r in results}) == NUM_WRITERS * NUM_INSERTS
    assert {(r.workload, r.batch_size) for r in results} == {
        (f"w{w}", i + 1) for w in range(NUM_WRITERS) for i in range(NUM_INSERTS)
    }
    assert _tables(path) == (SCHEMA_VERSION, {"results", "ceilings"})
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_writer_waits_for_the_lock_then_says_who_holds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "busy.db"
    open_store(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    monkeypatch.setattr("gpuwise.store.BUSY_TIMEOUT_S", 0.2)
    try:
        with open_store(path) as store, pytest.raises(GpuwiseError, match=r"busy\.db stayed locked by another process"):
            store.add(make_result())
        other.execute("COMMIT")
        with open_store(path) as store:  # and once it is free, the write goes through
            store.add(make_result())
            assert len(store.results()) == 1
    finally:
        other.close()


def test_csv_export_has_one_flat_row_per_result(tmp_path: Path) -> None:
    results = [make_result(id=1), make_cpu_result(id=2)]
    export_csv(results, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == csv_columns()
    assert {"workload", "hardware_cpu_model", "software_torch", "timing_median_s", "timing_spread", "mfu"} <= set(
        rows[0]
    )
    assert "timing_step_times_s" not in rows[0]
    for row, result in zip(rows, results, strict=True):
        expected = flat_dict(result)
        assert set(row) == set(expected)
        for key, value in expected.items():
            assert row[key] == ("" if value is None else str(value)), key
        assert float(row["timing_median_s"]) == result.timing.median_s  # floats are exact
        assert int(row["hardware_ram_bytes"]) == result.hardware.ram_bytes


def test_csv_of_no_results_is_the_header(tmp_path: Path) -> None:
    export_csv([], tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text().strip() == ",".join(csv_columns())


def test_json_export_is_to_dict(tmp_path: Path) -> None:
    results = [make_result(id=1), make_cpu_result(id=2)]
    export_json(results, tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert data == [r.to_dict() for r in results]
    assert data[0]["hardware"]["cpu_model"] == "AMD EPYC 9454 48-Core Processor"
    assert data[0]["timing"]["median_s"] == 0.1005


# --- gpuwise results ----------------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(get_app(), ["results", *args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    path = tmp_path / "filled.db"
    with open_store(path) as store:
        store.add(make_result())
        store.add(make_cpu_result(created_at="2025-03-02T08:30:00+00:00"))
    return path


def test_cli_table_lists_what_was_measured(filled_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: every column
    code, out, _ = cli("--db", str(filled_db))
    assert code == 0
    for text in ("2 benchmark results", "resnet50", "gpt2", "2025-03-02 08:30", "256 auto", "amp-bf16",
                 "NVIDIA H100", "100.5 ms", "99.5–101.7 ms", "2,547.3", "62.14", "8.4%",
                 "38.40 GiB", "2.14.1+cu124"):
        assert text in out, text
    assert out.index("gpt2") < out.index("resnet50")  # newest first


def test_cli_table_fits_80_columns(filled_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli("--db", str(filled_db))
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    for text in ("resnet50", "gpt2", "256 auto", "amp-bf16", "NVIDIA H100", "100.5 ms", "2,547.3", "--json"):
        assert text in out, text


@pytest.mark.parametrize("columns", ["300", "80"])
def test_cli_table_says_how_a_train_step_ran(tmp_path: Path, columns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    path = tmp_path / "train.db"
    with open_store(path) as store:
        store.add(make_result())
        store.add(make_result(origin="train", num_devices=8, fp8=True, compiled=True, activation_checkpointing="full",
                              grad_accum=4))
    code, out, _ = cli("--db", str(path))
    assert code == 0
    assert "8 processes, fp8, compiled, full checkpointing, accum 4" in out
    assert out.count("fp8") == 1  # the eager bench result says nothing


def test_cli_filters_and_json(filled_db: Path) -> None:
    code, out, _ = cli("--db", str(filled_db), "--device", "cpu", "--json")
    assert code == 0
    data = json.loads(out)
    assert [(r["workload"], r["device"], r["id"]) for r in data] == [("gpt2", "cpu", 2)]
    code, out, _ = cli("--db", str(filled_db), "--workload", "resnet50", "--device", "cpu")
    assert code == 0
    assert "no results match the filters (2 stored in" in out


def test_cli_empty_store_says_what_to_run(tmp_path: Path) -> None:
    open_store(tmp_path / "new.db").close()
    code, out, _ = cli("--db", str(tmp_path / "new.db"))
    assert code == 0
    assert "no results yet in" in out and "run gpuwise bench WORKLOAD" in out


def test_cli_honours_the_env_var(filled_db: Path) -> None:
    code, out, _ = cli("--json", env={"GPUWISE_DB": str(filled_db)})
    assert code == 0
    assert len(json.loads(out)) == 2


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_cli_export(filled_db: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"out{suffix}"
    code, out, _ = cli("--db", str(filled_db), "--workload", "gpt2", "--export", str(target))
    assert code == 0
    assert f"wrote 1 result to {target}" in out
    text = target.read_text()
    if suffix == ".json":
        assert [r["workload"] for r in json.loads(text)] == ["gpt2"]
    else:
        assert [r["workload"] for r in csv.DictReader(text.splitlines())] == ["gpt2"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--export", "out.xlsx"], r"--export out\.xlsx: unknown file type '\.xlsx'; name a \.csv or \.json file"),
        (["--export", "out"], r"unknown file type '\(none\)'"),
        (["--export", "/nonexistent-dir/out.csv"], r"cannot write --export /nonexistent-dir/out\.csv"),
    ],
)
def test_cli_export_mistakes_are_one_line(filled_db: Path, args: list[str], message: str) -> None:
    code, _, err = cli("--db", str(filled_db), *args)
    assert code == 2
    assert err.count("\n") == 1
    assert re.search(message, err), err


def test_cli_database_mistakes_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("hello" * 1000)
    code, _, err = cli("--db", str(bad))
    assert code == 2
    assert err.startswith("gpuwise: error: ") and err.count("\n") == 1
    assert "bad.db is not a gpuwise results database" in err and "--db" in err


def test_the_records_sit_below_bench_and_still_import_from_it() -> None:
    """store.py and hardware/local.py take their records from gpuwise.records, not from gpuwise.bench."""
    import gpuwise.bench.result as old
    import gpuwise.records as records

    for name in ("BenchResult", "Ceilings", "Hardware", "Software", "Timing"):
        assert getattr(old, name) is getattr(records, name)
    for module in ("gpuwise/store.py", "gpuwise/hardware/local.py"):
        source = (Path(__file__).parent.parent / module).read_text()
        assert not re.search(r"^\s*(from|import) gpuwise\.bench", source, re.M), module
