"""The R4B models' share of full validation, spread over worker processes when there is enough of it.

Most resources are settled by the fast schema validator (``fhir_schema``) in this process; what it does not
accept goes to the models, pure CPU in pydantic, which the GIL keeps threads from sharing. When many resources need
them (a big file of types the schema does not decide), a small pool of processes takes a share while this process
validates its own share at the same time. The pool is started once and reused for the session; workers come from a
``forkserver`` so a GUI process with threads is never forked, and data travels through pipes only, never temp files.

``warm`` is what the GUI calls at unlock: it compiles the schema here and starts the pool, so the first import
waits for neither. The CLI never calls it: it stays in one process unless a file is large enough to repay starting
one (``COLD_PARALLEL``).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

from vault.records import errors, fhir_schema
from vault.records.fhir_models import validate_batch

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
# Below this, sending work to another process costs more than it saves: a worker builds each model class the first
# time it meets a resource type (a fraction of a second each), on top of sending the resources over a pipe.
MIN_PARALLEL = 1000
COLD_PARALLEL = 4000        # with no pool running yet: about two seconds of model validation, which repays a start


def _get_pool(size: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(cancel_futures=True)
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["vault.records.fhir_models"])
            _pool = ProcessPoolExecutor(max_workers=size, mp_context=ctx)
            _pool_size = size
        return _pool


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(cancel_futures=True)
            _pool = None


atexit.register(shutdown)


def default_workers() -> int:
    return min(os.cpu_count() or 1, 4)


def warm(workers: int | None = None) -> None:
    """Compile the fast validator and start the workers with the models loaded (the GUI calls this at unlock,
    off its GUI thread: it takes about a second the first time)."""
    fhir_schema.warm()
    workers = workers or default_workers()
    if workers > 1:
        pool = _get_pool(workers - 1)
        list(pool.map(validate_batch, [[{"resourceType": "Basic", "code": {"text": "warm"}}]] * (workers - 1)))


def _is_warm() -> bool:
    with _lock:
        return _pool is not None


def validate_all(resources: list[dict], workers: int = 0) -> list[errors.ImportRejected | None]:
    """The models' verdict on each resource, in order, as if validated one by one in this process.

    ``workers`` 1: this process only; N > 1: N - 1 pool processes beside this one; 0: decide from the amount of work
    and whether a pool is already running.
    """
    if workers == 0:
        enough = len(resources) >= (MIN_PARALLEL if _is_warm() else COLD_PARALLEL)
        workers = default_workers() if enough else 1
    if workers <= 1 or len(resources) < MIN_PARALLEL:
        raw = validate_batch(resources)
    else:
        pool = _get_pool(workers - 1)
        own = len(resources) // workers            # this process's share, validated while the pool does the rest
        rest = resources[own:]
        size = -(-len(rest) // ((workers - 1) * 4))
        futures = [pool.submit(validate_batch, rest[i:i + size]) for i in range(0, len(rest), size)]
        raw = validate_batch(resources[:own])
        for f in futures:
            raw.extend(f.result())
    return [None if r is None else getattr(errors, r[0])(r[1]) for r in raw]
