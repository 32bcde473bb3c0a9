"""The results store: every run record in one SQLite file (stdlib ``sqlite3``).

One row per ``(config, seed, protocol)``; adding a record again replaces the row, so ingesting
the same run twice changes nothing. A ``failed`` record never replaces a ``done`` one (a retry
that crashes does not erase a finished result). The database is in WAL mode with a busy timeout
and every write is one ``BEGIN IMMEDIATE`` transaction, so concurrent writers (the ranks of
several sweeps, a slurm array) queue instead of corrupting it or failing with "database is
locked". WAL needs a local or POSIX-locking file system; on a network file system without
working locks, let each job write only its ``run_record.json`` and gather them afterwards with
``python tools/benchmark.py --collect WORK_ROOT --store results.db``.

Examples:
    >>> store = ResultStore('results.db')
    >>> store.put(record)                       # a run_record.json dict
    >>> store.status('configs/lora/vit-b_vtab-dtd.py', 0, 'default')
    'done'
    >>> rows = store.records(benchmark='vtab')
"""
import glob
import json
import os
import os.path as osp
import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence

from .record import RECORD_FILE, read_record

# columns kept outside the JSON blob, for queries; the whole record is in `record`
_COLUMNS = ('config', 'seed', 'protocol', 'status', 'method', 'backbone', 'dataset',
            'benchmark', 'metric', 'value', 'params', 'ppt', 'git', 'end')
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    config TEXT NOT NULL, seed INTEGER NOT NULL, protocol TEXT NOT NULL,
    status TEXT NOT NULL, method TEXT, backbone TEXT, dataset TEXT, benchmark TEXT,
    metric TEXT, value REAL, params INTEGER, ppt REAL, git TEXT, "end" TEXT,
    record TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (config, seed, protocol))
"""
NO_SEED = -1  # the key's seed when a record has none


class ResultStore:
    """A SQLite results store (created on first use).

    Args:
        path: The database file, e.g. ``results.db``.
        timeout: Seconds a writer waits for another writer's lock before failing.
    """

    def __init__(self, path: str, timeout: float = 120.) -> None:
        self.path = path
        self.timeout = timeout
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with self._connect() as conn:
            # WAL: readers never block the writer; one writer at a time (BEGIN IMMEDIATE)
            mode = conn.execute('PRAGMA journal_mode=WAL').fetchone()[0]
            if mode.lower() != 'wal':
                raise RuntimeError(f'{path}: SQLite refused WAL mode ({mode}); the file system '
                                   'may not support it. Put the store on a local disk.')
            conn.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute(f'PRAGMA busy_timeout={int(self.timeout * 1000)}')
            yield conn
        finally:
            conn.close()

    @staticmethod
    def key(record: dict) -> tuple:
        seed = record.get('seed')
        return record['config'], NO_SEED if seed is None else int(seed), record['protocol']

    def put(self, record: dict, force: bool = False) -> bool:
        """Add or replace the record's row. Returns False when it was not written because the
        key holds a ``done`` record and this one failed or finished earlier (unless ``force``).
        """
        config, seed, protocol = self.key(record)
        row = dict(record, seed=seed)
        values = [row.get(c) for c in _COLUMNS]
        blob = json.dumps(record, sort_keys=True)
        with self._connect() as conn:
            for attempt in range(5):  # busy_timeout covers most waits; retry the rest
                try:
                    conn.execute('BEGIN IMMEDIATE')
                    break
                except sqlite3.OperationalError:
                    if attempt == 4:
                        raise
                    time.sleep(0.5 * (attempt + 1))
            try:
                current = conn.execute(
                    'SELECT status, "end" FROM runs WHERE config=? AND seed=? AND protocol=?',
                    (config, seed, protocol)).fetchone()
                if not force and current and current[0] == 'done' and (
                        record['status'] != 'done'  # a crashed retry keeps the result
                        or (record.get('end') or '') < (current[1] or '')):  # older record
                    conn.execute('ROLLBACK')
                    return False
                cols = ', '.join(f'"{c}"' for c in _COLUMNS)
                marks = ', '.join('?' * (len(_COLUMNS) + 2))
                conn.execute(f'INSERT OR REPLACE INTO runs ({cols}, record, updated) '
                             f'VALUES ({marks})', values + [blob, time.time()])
                conn.execute('COMMIT')
            except BaseException:
                conn.execute('ROLLBACK')
                raise
        return True

    def get(self, config: str, seed: Optional[int], protocol: str) -> Optional[dict]:
        """The record of a key, or None."""
        seed = NO_SEED if seed is None else int(seed)
        with self._connect() as conn:
            row = conn.execute('SELECT record FROM runs WHERE config=? AND seed=? AND protocol=?',
                               (config, seed, protocol)).fetchone()
        return json.loads(row[0]) if row else None

    def status(self, config: str, seed: Optional[int], protocol: str) -> Optional[str]:
        """``'done'``, ``'failed'`` or None (never run / not recorded)."""
        record = self.get(config, seed, protocol)
        return record['status'] if record else None

    def records(self, benchmark: Optional[str] = None, status: Optional[str] = 'done',
                protocol: Optional[str] = None) -> List[dict]:
        """Records, filtered; ordered by config, protocol and seed."""
        where, args = [], []
        for column, value in (('benchmark', benchmark), ('status', status),
                              ('protocol', protocol)):
            if value is not None:
                where.append(f'{column}=?')
                args.append(value)
        sql = 'SELECT record FROM runs' + (' WHERE ' + ' AND '.join(where) if where else '')
        with self._connect() as conn:
            rows = conn.execute(sql + ' ORDER BY config, protocol, seed', args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def __len__(self) -> int:
        with self._connect() as conn:
            return conn.execute('SELECT COUNT(*) FROM runs').fetchone()[0]

    def integrity(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``'ok'`` for a sound file)."""
        with self._connect() as conn:
            return conn.execute('PRAGMA integrity_check').fetchone()[0]

    def collect(self, roots: Sequence[str]) -> int:
        """Add every ``run_record.json`` under ``roots`` (recursively); returns how many were
        written. Idempotent: the rows are keyed by (config, seed, protocol)."""
        written = 0
        for root in roots:
            paths = [root] if osp.isfile(root) else sorted(
                glob.glob(osp.join(root, '**', RECORD_FILE), recursive=True))
            for path in paths:
                written += self.put(read_record(path))
        return written
