"""The results store: an embedded SQLite database of benchmark results and device ceilings.

Every record is kept whole as JSON next to a few columns the filters query. The schema is
versioned with ``PRAGMA user_version`` and grows only by appending to ``MIGRATIONS``; a
migration, once released, is never edited.

Several ``gpuwise bench`` processes may write one file at once: the database runs in WAL
mode (readers never block the writer), every write takes the write lock up front
(``BEGIN IMMEDIATE``) and waits up to ``BUSY_TIMEOUT_S`` for it, and migrations run inside
such a transaction after re-reading the version, so two processes opening a new file do not
both migrate it. WAL needs the file on a local disk (not NFS/SMB) and a writable directory
for its ``-wal`` and ``-shm`` side files.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TextIO, get_type_hints

from gpuwise.errors import GpuwiseError
from gpuwise.records import BenchResult, Ceilings, Hardware, Software, Timing

ENV_VAR = "GPUWISE_DB"
BUSY_TIMEOUT_S = 30.0

# Migration N (1-based) takes the schema from version N-1 to N. Append only.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: benchmark results
    (
        """
        CREATE TABLE results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,       -- ISO 8601, UTC
            workload TEXT NOT NULL,
            device TEXT NOT NULL,           -- "cpu", "cuda:0"
            device_name TEXT NOT NULL,
            precision TEXT NOT NULL,
            batch_size INTEGER NOT NULL,
            gpuwise_version TEXT NOT NULL,
            record TEXT NOT NULL            -- the whole BenchResult as JSON, without its id
        )
        """,
        "CREATE INDEX results_by_workload ON results (workload, device, created_at)",
        "CREATE INDEX results_by_time ON results (created_at)",
    ),
    # 2: device ceilings measured by `gpuwise calibrate`, per machine
    (
        """
        CREATE TABLE ceilings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            machine TEXT NOT NULL,          -- the caller's key for the host
            device TEXT NOT NULL,
            device_name TEXT NOT NULL,
            measured_at TEXT NOT NULL,      -- ISO 8601, UTC
            record TEXT NOT NULL            -- the whole Ceilings as JSON
        )
        """,
        "CREATE INDEX ceilings_by_device ON ceilings (machine, device, measured_at)",
    ),
    # 3: where a result comes from: "bench" (every earlier row) or "train" (`gpuwise train`, which
    # also records its prediction in the JSON record)
    ("ALTER TABLE results ADD COLUMN origin TEXT NOT NULL DEFAULT 'bench'",),
)
SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    """``$GPUWISE_DB`` if set, else ``results.db`` in the user's data directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("gpuwise")) / "results.db"


@contextmanager
def removed_if_it_fails(path: Path | None) -> Iterator[None]:
    """A results store this block may create (``path``, None: the default one) is removed again, with the
    folders made for it, when the block fails with a user mistake: a command that fails leaves nothing
    behind, not even the CPU ceilings it measured on the way (``gpuwise train`` choosing ``--precision
    auto`` before it finds a model it cannot trace)."""
    db = path if path is not None else default_db_path()
    made = [p for p in (db, *db.parents) if not p.exists()]
    try:
        yield
    except GpuwiseError:
        for p in made:  # the file (and its -wal, -shm) first, then each folder made for it, innermost first
            if p == db:
                for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                    f.unlink(missing_ok=True)
            else:
                with contextlib.suppress(OSError):
                    p.rmdir()  # only while empty
        raise


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> None:
    """Bring the schema up to ``target`` in one write transaction (a no-op when it is there).

    The version is read again after the write lock is held: a process that waited on another
    one migrating the same new file finds the work done.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)
        for number in range(version + 1, target + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
        if target > version:
            conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Store:
    """An open results database. Use ``open_store``; close it, or use it as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def add(self, result: BenchResult) -> int:
        """Store one result; returns its row id (the stored record's ``id`` is ignored)."""
        record = _dumps(_record_dict(result))
        with self._write():
            cursor = self._conn.execute(
                "INSERT INTO results (created_at, workload, device, device_name, precision, batch_size,"
                " gpuwise_version, record, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.created_at, result.workload, result.device, result.device_name, result.precision,
                    result.batch_size, result.software.gpuwise, record, result.origin,
                ),
            )
        row_id = cursor.lastrowid
        assert row_id is not None
        return row_id

    def results(self, workload: str | None = None, device: str | None = None,
                origin: str | None = None) -> list[BenchResult]:
        """Stored results, newest first, each with its row ``id``.

        ``device`` matches the device ("cuda:0"), its kind ("cuda" matches every "cuda:N"),
        or part of the device's name, case-insensitively ("h100"); ``origin`` is "bench" or "train".
        """
        where: list[str] = []
        params: list[str] = []
        if workload is not None:
            where.append("workload = ?")
            params.append(workload)
        if origin is not None:
            where.append("origin = ?")
            params.append(origin)
        if device is not None:
            pattern = device.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(
                "(device = ? OR device LIKE ? ESCAPE '\\' OR device_name LIKE ? ESCAPE '\\')"
            )
            params += [device, pattern + ":%", "%" + pattern + "%"]
        sql = "SELECT id, record FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        rows = self._conn.execute(sql, params).fetchall()
        return [replace(result_from_dict(json.loads(record)), id=row_id) for row_id, record in rows]

    def put_ceilings(self, ceilings: Ceilings, machine: str) -> None:
        """Store the ceilings of one device of ``machine`` (a key the caller chooses for the host)."""
        with self._write():
            self._conn.execute(
                "INSERT INTO ceilings (machine, device, device_name, measured_at, record) VALUES (?, ?, ?, ?, ?)",
                (machine, ceilings.device, ceilings.device_name, ceilings.measured_at, _dumps(asdict(ceilings))),
            )

    def get_ceilings(self, device: str, machine: str) -> Ceilings | None:
        """The latest ceilings of ``device`` on ``machine``, or None if it was never calibrated."""
        row = self._conn.execute(
            "SELECT record FROM ceilings WHERE machine = ? AND device = ? ORDER BY measured_at DESC, id DESC LIMIT 1",
            (machine, device),
        ).fetchone()
        if row is None:
            return None
        ceilings = _build(Ceilings, json.loads(row[0]))
        assert isinstance(ceilings, Ceilings)
        return ceilings

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction holding the write lock from its start (waits up to the busy timeout)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise _open_error(self.path, e) from e
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException as e:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error) and _disk_full(self.path):
                raise _no_space(self.path) from None
            raise


def open_store(path: Path | None = None, *, read_only: bool = False) -> Store:
    """Open (creating and migrating as needed) the results database at ``path``.

    ``path`` None means ``$GPUWISE_DB`` or the default in the user's data directory.
    Raises ``GpuwiseError`` for a path that cannot be written, a file that is not a SQLite
    database, or a database written by a newer gpuwise. ``read_only``: for listing, which
    creates nothing (no folder, file or side file) and needs read access only, so works on
    a read-only file system; the file must exist (``Store.missing`` says whether it does).
    """
    db_path = Path(path).expanduser() if path is not None else default_db_path()
    if read_only:
        return _open_read_only(db_path)
    _check_writable(db_path)
    side_files = [db_path, *(db_path.with_name(db_path.name + suffix) for suffix in ("-wal", "-shm"))]
    new_files = [f for f in side_files if not f.exists()]
    try:
        return _open(db_path)
    except GpuwiseError:
        if _disk_full(db_path):  # leave no empty database, -wal or -shm behind: they are ours, and useless
            for f in new_files:
                with contextlib.suppress(OSError):
                    f.unlink()
            raise _no_space(db_path) from None
        raise


def _no_space(db_path: Path) -> GpuwiseError:
    free = shutil.disk_usage(db_path.parent).free
    return GpuwiseError(f"no space left on device for results database {db_path} ({free:,} bytes free): "
                        "free some space, or use --db with a file on another disk")


def _disk_full(path: Path) -> bool:
    """Whether the disk of ``path`` is (all but) full: SQLite reports it as "disk I/O error" when it cannot
    even create its -shm file."""
    try:
        return shutil.disk_usage(path.parent).free < _MIN_FREE_BYTES
    except OSError:
        return False


_MIN_FREE_BYTES = 256 * 1024  # less than this and SQLite's journal and -shm (32 KiB) may not fit


def _open_read_only(db_path: Path) -> Store:
    """The database, for reading: as an existing file (``mode=rw`` creates none), so that the last connection
    to close removes SQLite's -wal and -shm files as usual. Where they cannot be made (a read-only file system,
    a full disk), ``immutable``: the file as it is on disk (what a writer left in its -wal unmerged is not
    seen), which creates nothing."""
    if db_path.is_dir():
        raise GpuwiseError(f"results database {db_path} is a directory: give the database file to --db")
    if not db_path.exists():
        raise GpuwiseError(f"no results database at {db_path} (no such file): check --db, or make one with "
                           f"'gpuwise bench WORKLOAD --db {db_path}'")
    if not os.access(db_path, os.R_OK):
        raise GpuwiseError(f"results database {db_path} is not readable: check its permissions, or use --db")
    uri = "file:" + urllib.parse.quote(str(db_path.resolve()))
    problem: sqlite3.Error | None = None
    writable = os.access(db_path.parent, os.W_OK | os.X_OK) and os.access(db_path, os.W_OK)
    side_files = [db_path.with_name(db_path.name + suffix) for suffix in ("-wal", "-shm")]
    new_files = [f for f in side_files if not f.exists()]
    for mode in (["mode=rw"] if writable and not _disk_full(db_path) else []) + ["mode=ro&immutable=1"]:
        for f in new_files:  # what a failed attempt left: empty, and ours
            with contextlib.suppress(OSError):
                if f.stat().st_size == 0:
                    f.unlink()
        try:
            conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as e:
            problem = e
            continue
        try:
            version = _user_version(conn)
        except sqlite3.Error as e:
            conn.close()
            problem = e
            if isinstance(e, sqlite3.DatabaseError) and "not a database" in str(e):
                break
            continue
        if version > SCHEMA_VERSION:
            conn.close()
            raise GpuwiseError(f"results database {db_path} has schema version {version}, newer than this gpuwise "
                               f"knows ({SCHEMA_VERSION}): upgrade gpuwise, or use --db with another file")
        if version < SCHEMA_VERSION:  # an older schema is brought up to date by any command that writes
            conn.close()
            return _open(db_path)
        return Store(conn, db_path)
    assert problem is not None
    raise _open_error(db_path, problem) from problem


def _open(db_path: Path) -> Store:
    try:
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as e:
        raise _open_error(db_path, e) from e
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL keeps the database consistent on a crash
        version = _user_version(conn)
        if version > SCHEMA_VERSION:
            raise GpuwiseError(
                f"results database {db_path} has schema version {version}, newer than this gpuwise knows "
                f"({SCHEMA_VERSION}): upgrade gpuwise, or use --db with another file"
            )
        if version < SCHEMA_VERSION:
            migrate(conn)
    except GpuwiseError:
        conn.close()
        raise
    except sqlite3.Error as e:
        conn.close()
        raise _open_error(db_path, e) from e
    return Store(conn, db_path)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (persistent: the first process to open it does it).

    Changing the journal mode does not wait on the busy timeout: when another process opening
    the same new file holds a lock, SQLite answers "locked" at once, so retry until the timeout.
    A file system without WAL support keeps its rollback journal, which still serialises
    writers safely, only with less concurrency.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay_s = 0.005
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(delay_s)
        delay_s = min(2 * delay_s, 0.1)


def _check_writable(path: Path) -> None:
    fix = "choose a writable file with --db PATH (or $GPUWISE_DB)"
    if path.is_dir():
        raise GpuwiseError(f"results database {path} is a directory: {fix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GpuwiseError(f"cannot create the directory of results database {path} ({e.strerror}): {fix}") from e
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise GpuwiseError(f"results database {path} is not writable: {fix}")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        # WAL creates its -wal and -shm files next to the database.
        raise GpuwiseError(f"directory of results database {path} is not writable: {fix}")


def _open_error(path: Path, e: sqlite3.Error) -> GpuwiseError:
    message = str(e)
    if isinstance(e, sqlite3.DatabaseError) and "not a database" in message:
        return GpuwiseError(f"{path} is not a gpuwise results database (not SQLite): use --db with another file")
    if "locked" in message or "busy" in message:
        return GpuwiseError(
            f"results database {path} stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s: "
            "try again, or use --db with another file"
        )
    return GpuwiseError(f"cannot use results database {path} ({message}): use --db with another file")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


# --- records <-> JSON ---------------------------------------------------------------------------


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _record_dict(result: BenchResult) -> dict[str, Any]:
    data = asdict(result)
    data.pop("id")  # the row id is the id
    return data


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    """A dataclass from its ``asdict`` form: nested dataclasses rebuilt, tuples restored.

    Keys this version does not know are dropped, so a record written by a newer gpuwise
    (same schema, one more field) still reads.
    """
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        kind = hints[f.name]
        if isinstance(kind, type) and is_dataclass(kind) and isinstance(value, dict):
            value = _build(kind, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def result_from_dict(data: dict[str, Any]) -> BenchResult:
    """A ``BenchResult`` from the JSON the store keeps (``asdict`` form)."""
    result = _build(BenchResult, data)
    assert isinstance(result, BenchResult)
    return result


# --- export -------------------------------------------------------------------------------------

ExportFormat = Literal["csv", "json"]
_NESTED = {"hardware": Hardware, "software": Software, "timing": Timing}


def export_format(path: Path) -> ExportFormat:
    """The export format a file name asks for, by its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    raise GpuwiseError(f"--export {path}: unknown file type '{suffix or '(none)'}'; name a .csv or .json file")


def export_results(results: Sequence[BenchResult], path: Path) -> None:
    """Write ``results`` as CSV or JSON, chosen by the file's suffix."""
    if export_format(path) == "csv":
        export_csv(results, path)
    else:
        export_json(results, path)


def csv_columns() -> list[str]:
    """The CSV header: ``BenchResult.to_dict`` flattened, nested fields as ``timing_median_s``."""
    columns: list[str] = []
    for f in fields(BenchResult):
        nested = _NESTED.get(f.name)
        if nested is None:
            columns.append(f.name)
            continue
        sub = [g.name for g in fields(nested) if not (nested is Timing and g.name == "step_times_s")]
        if nested is Timing:
            sub.append("spread")
        columns += [f"{f.name}_{name}" for name in sub]
    return columns


def flat_dict(result: BenchResult) -> dict[str, Any]:
    """One result as a flat row: ``to_dict`` with nested fields prefixed by their parent's name."""
    row: dict[str, Any] = {}
    for key, value in result.to_dict().items():
        if isinstance(value, dict):
            row.update({f"{key}_{k}": v for k, v in value.items()})
        else:
            row[key] = value
    return row


def export_csv(results: Sequence[BenchResult], path: Path) -> None:
    """One flat row per result (``csv_columns``); None is an empty cell, floats are exact (repr)."""
    columns = csv_columns()
    with _open_export(path) as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        for result in results:
            writer.writerow(flat_dict(result))


def export_json(results: Sequence[BenchResult], path: Path) -> None:
    """A JSON list of ``BenchResult.to_dict()``, as ``gpuwise results --json`` prints it."""
    with _open_export(path) as out:
        json.dump([r.to_dict() for r in results], out, indent=2)
        out.write("\n")


@contextmanager
def _open_export(path: Path) -> Iterator[TextIO]:
    try:
        with open(path, "w", newline="", encoding="utf-8") as out:
            yield out
    except OSError as e:
        raise GpuwiseError(f"cannot write --export {path} ({e.strerror}): choose another file") from e
