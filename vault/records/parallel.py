"""Full R4B validation spread over worker processes, for big files on machines with spare cores.

Validation is pure CPU in pydantic and dominates a validated import; the GIL keeps threads from helping, so
resources go to a small pool of processes (started once, reused for every import of the session). Workers come
from a ``forkserver`` so a GUI process with threads is never forked. Data travels through pipes only, never temp
files.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

from vault.records import errors
from vault.records.fhir_models import validate_batch

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
MIN_PARALLEL = 256          # below this, starting work in other processes costs more than it saves


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(cancel_futures=True)
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["vault.records.fhir_models"])
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            _pool_size = workers
        return _pool


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(cancel_futures=True)
            _pool = None


atexit.register(shutdown)


def warm(workers: int) -> None:
    """Start the workers and load the models in them now (the GUI calls this at unlock)."""
    pool = _get_pool(workers)
    list(pool.map(validate_batch, [[{"resourceType": "Basic", "code": {"text": "warm"}}]] * workers))


def validate_all(resources: list[dict], workers: int) -> list[errors.ImportRejected | None]:
    """Same answers as validating each resource in this process, in the same order."""
    if workers <= 1 or len(resources) < MIN_PARALLEL:
        raw = validate_batch(resources)
    else:
        pool = _get_pool(workers)
        size = -(-len(resources) // (workers * 4))
        chunks = [resources[i:i + size] for i in range(0, len(resources), size)]
        raw = [r for part in pool.map(validate_batch, chunks) for r in part]
    return [None if r is None else getattr(errors, r[0])(r[1]) for r in raw]
