"""Fuzz every parser that reads outside data, at scale, and print what was found.

    .venv/bin/python bench/fuzz.py                          # every target, 1,000,000 inputs each (hours: see docs)
    .venv/bin/python bench/fuzz.py --target shlink --inputs 200000
    .venv/bin/python bench/fuzz.py --jobs 2                 # two targets at a time, one per core
    .venv/bin/python bench/fuzz.py --engine builtin         # no atheris: seeded mutation, no coverage feedback
    .venv/bin/python bench/fuzz.py --gateway-socket 2000    # the gateway over real loopback sockets
    .venv/bin/python bench/fuzz.py --write-seeds            # regenerate tests/data/fuzz-corpus/*/seed-*
    .venv/bin/python bench/fuzz.py --update-corpus ...      # keep the small inputs that added coverage

The ``atheris`` engine (the default) runs each target in its own process under libFuzzer, with coverage of the
project's modules (and the http and JOSE code they parse with) as feedback and ``fuzz_mutate`` as the mutator.
A target's contract is in ``fuzz_targets``: any exception other than its typed errors is a *finding* (recorded
with its input under the work folder, and the run goes on); a hang is an input that takes longer than
``--timeout`` seconds (libFuzzer stops the process; the run restarts after it); memory is capped by
``--rss-limit-mb`` and the peak is printed. Findings become regression inputs in ``tests/data/fuzz-corpus``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

CORPUS = ROOT / "tests" / "data" / "fuzz-corpus"
INSTRUMENTED = ["vault", "sync", "joserfc", "http", "email"]
KEEP_PER_TARGET = 40        # inputs kept per target by --update-corpus (the corpus stays well under 2 MB)
KEEP_MAX_BYTES = 4096


# --- findings ----------------------------------------------------------------------------------------------------

def where(exc: BaseException) -> str:
    """The innermost project frame an exception came from: what makes two findings the same."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/vault/" in f.filename or "/sync/" in f.filename] or frames
    f = ours[-1] if ours else None
    return f"{type(exc).__name__} at {Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}" if f \
        else type(exc).__name__


def record(findings: Path, target: str, data: bytes, exc: BaseException, seen: dict) -> bool:
    """Keep the input and its traceback; True the first time this place fails."""
    key = where(exc)
    seen[key] = seen.get(key, 0) + 1
    if seen[key] > 1:
        return False
    findings.mkdir(parents=True, exist_ok=True)
    name = f"{target}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    (findings / f"{name}.bin").write_bytes(data)
    (findings / f"{name}.txt").write_text(key + "\n\n" + "".join(traceback.format_exception(exc)))
    print(f"FINDING {target}: {key}", file=sys.stderr, flush=True)
    return True


# --- the built-in engine (also what the CI test uses) -------------------------------------------------------------

class Hang(BaseException):
    """Raised by the per-input alarm; a BaseException so no ``except Exception`` in a parser swallows it."""


def load_corpus(target: str) -> list[bytes]:
    folder = CORPUS / target
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []


def burst(target_name: str, inputs: int, seed: int = 0, time_bound: float = 5.0, corpus: list[bytes] | None = None,
          findings: Path | None = None, replay: bool = True) -> dict:
    """Replay ``corpus`` (default: the target's folder, else its generated seeds), then ``inputs`` seeded
    mutations of it. Returns counts; findings and hangs are listed with their place, not raised."""
    import faulthandler
    import fuzz_mutate
    import fuzz_targets
    t = fuzz_targets.TARGETS[target_name]
    pool = list(corpus if corpus is not None else (load_corpus(target_name) or t.seeds()))
    rng = random.Random(seed)
    seen: dict = {}
    stats = {"target": target_name, "inputs": 0, "ok": 0, "refused": 0, "findings": [], "hangs": [],
             "slowest": 0.0}

    def on_alarm(signum, frame):
        raise Hang()

    old = signal.signal(signal.SIGALRM, on_alarm)
    started = time.perf_counter()
    try:
        queue = list(pool) if replay else []
        for i in range(len(queue) + inputs):
            if i < len(queue):
                data = queue[i]
            else:
                data = fuzz_mutate.mutate(rng.choice(pool), t.max_len, rng, fuzz_mutate.bytes_mutate)
            # a hang inside C code cannot be interrupted by the alarm: the watchdog ends the process instead
            faulthandler.dump_traceback_later(time_bound * 4, exit=True)
            signal.setitimer(signal.ITIMER_REAL, time_bound)
            t0 = time.perf_counter()
            try:
                outcome = fuzz_targets.run_one(t, data)
                stats[outcome] += 1
            except Hang:
                stats["hangs"].append(data)
            except Exception as exc:  # every other exception breaks the contract
                if findings is not None:
                    record(findings, target_name, data, exc, seen)
                if seen.get(where(exc), 0) <= 1 or findings is None:
                    stats["findings"].append((where(exc), data))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                faulthandler.cancel_dump_traceback_later()
            stats["slowest"] = max(stats["slowest"], time.perf_counter() - t0)
            stats["inputs"] += 1
    finally:
        signal.signal(signal.SIGALRM, old)
        if t.teardown:
            t.teardown()
    stats["seconds"] = time.perf_counter() - started
    stats["rate"] = stats["inputs"] / stats["seconds"] if stats["seconds"] else 0.0
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stats


# --- the atheris engine --------------------------------------------------------------------------------------------

def atheris_worker(name: str, findings: Path, libfuzzer_args: list[str]) -> None:
    import atheris
    with atheris.instrument_imports(include=INSTRUMENTED):
        import fuzz_targets
    import fuzz_mutate
    t = fuzz_targets.TARGETS[name]
    seen: dict = {}

    def test_one(data: bytes) -> None:
        try:
            fuzz_targets.run_one(t, data)
        except Exception as exc:  # recorded, and the run goes on: one run counts every distinct finding
            record(findings, name, data, exc, seen)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        return fuzz_mutate.mutate(data, max_size, random.Random(seed), lambda d, m, _r: atheris.Mutate(d, m))

    # libFuzzer's merge re-runs argv[0] through the shell, so it must be the whole worker command
    self_command = f"{sys.executable} {Path(__file__).resolve()} --worker {name} --findings {findings} --"
    atheris.Setup([self_command, *libfuzzer_args], test_one, custom_mutator=custom_mutator)
    atheris.Fuzz()


_PROGRESS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?rss: (\d+)Mb")


def run_atheris(name: str, inputs: int, args, work: Path) -> dict:
    import fuzz_targets
    t = fuzz_targets.TARGETS[name]
    corpus_dir, artifacts, findings = work / name / "corpus", work / name / "artifacts", work / name / "findings"
    for d in (corpus_dir, artifacts):
        d.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / name
    stats = {"target": name, "inputs": 0, "cov": 0, "ft": 0, "corpus": 0, "peak_rss_mb": 0, "crashes": [],
             "restarts": 0}
    started = time.monotonic()
    while stats["inputs"] < inputs and stats["restarts"] <= args.max_restarts:
        before = set(artifacts.iterdir())
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--findings", str(findings), "--",
               f"-runs={inputs - stats['inputs']}", f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}",
               f"-max_len={t.max_len}", f"-artifact_prefix={artifacts}/", f"-seed={args.seed + stats['restarts']}",
               "-print_final_stats=1", "-reload=0", str(corpus_dir)] + ([str(seeds)] if seeds.is_dir() else [])
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                errors="replace", preexec_fn=lambda: os.nice(args.nice) if args.nice else None)
        done = 0
        assert proc.stderr is not None
        for line in proc.stderr:
            m = _PROGRESS.match(line)
            if m:
                done = int(m.group(1))
                stats["cov"], stats["ft"], stats["corpus"] = int(m.group(2)), int(m.group(3)), int(m.group(4))
                stats["peak_rss_mb"] = max(stats["peak_rss_mb"], int(m.group(5)))
            elif line.startswith(("FINDING", "==", "ALARM", "MS:", "SUMMARY")) and args.verbose:
                print(f"  [{name}] {line.rstrip()}", file=sys.stderr)
            elif line.startswith("FINDING"):
                print(f"  [{name}] {line.rstrip()}", file=sys.stderr)
        proc.wait()
        stats["inputs"] += done
        if proc.returncode == 0:
            break
        new = sorted(set(artifacts.iterdir()) - before)
        stats["crashes"].extend(str(p) for p in new)
        print(f"  [{name}] worker stopped (exit {proc.returncode}) after {done} inputs: "
              f"{', '.join(p.name for p in new) or 'no artifact'}; restarting", file=sys.stderr)
        stats["inputs"] += 1  # the input that stopped it
        stats["restarts"] += 1
    stats["seconds"] = time.monotonic() - started
    stats["rate"] = stats["inputs"] / stats["seconds"] if stats["seconds"] else 0.0
    stats["findings"] = sorted(p.read_text().splitlines()[0] for p in findings.glob("*.txt")) \
        if findings.is_dir() else []
    stats["hangs"] = [c for c in stats["crashes"] if "/timeout-" in c]
    stats["oom"] = [c for c in stats["crashes"] if "/oom-" in c]
    return stats


def update_corpus(name: str, work: Path, max_len: int) -> int:
    """libFuzzer's merge adds to the target's corpus folder only inputs that reach something it does not; the
    large ones are dropped again so the corpus stays small."""
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in folder.iterdir()}
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", name, "--findings",
                    str(work / name / "findings"), "--", "-merge=1", f"-max_len={max_len}", str(folder),
                    str(work / name / "corpus")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    added = sorted((p for p in folder.iterdir() if p.name not in before), key=lambda p: p.stat().st_size)
    kept = 0
    for p in added:
        if kept < KEEP_PER_TARGET and p.stat().st_size <= KEEP_MAX_BYTES:
            p.rename(folder / f"found-{p.name[:12]}")
            kept += 1
        else:
            p.unlink()
    return kept


def write_seeds(name: str) -> int:
    import fuzz_targets
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("seed-*"):
        old.unlink()
    seeds = fuzz_targets.TARGETS[name].seeds()
    for i, data in enumerate(seeds):
        (folder / f"seed-{i:02d}-{hashlib.sha1(data).hexdigest()[:10]}").write_bytes(data)
    return len(seeds)


def gateway_socket_run(requests: int, seed: int) -> dict:
    """The gateway on a real loopback socket, sent mutated requests; it must answer every well-formed request
    afterwards and never drop the process."""
    import socket
    import fuzz_mutate
    import fuzz_targets
    from sync.gateway import Gateway
    rng = random.Random(seed)
    pool = load_corpus("gateway") or fuzz_targets.TARGETS["gateway"].seeds()
    held = fuzz_targets._HELD
    counts = {"requests": 0, "answered": 0, "closed_without_answer": 0}
    started = time.perf_counter()
    with Gateway(held.get, idle_timeout=0.5, head_timeout=1.0) as gw:
        for _ in range(requests):
            data = fuzz_mutate.mutate(rng.choice(pool), 4096, rng, fuzz_mutate.bytes_mutate)[1:]
            with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            counts["requests"] += 1
            counts["answered" if answer.startswith(b"HTTP/1.") else "closed_without_answer"] += 1
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
            s.sendall(f"GET /ipfs/{fuzz_targets._HELD_CID} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            final = s.recv(65536)
    counts["still_serving"] = final.startswith(b"HTTP/1.1 200")
    counts["seconds"] = time.perf_counter() - started
    return counts


def _print(stats: dict) -> None:
    hangs, finds = len(stats.get("hangs", [])), len(stats.get("findings", []))
    cov = f"cov {stats['cov']:>6} ft {stats['ft']:>6} corpus {stats['corpus']:>5}  " if "cov" in stats else ""
    print(f"{stats['target']:<15} {stats['inputs']:>10,} inputs  {stats['rate']:>8.0f}/s  {cov}"
          f"findings {finds}  hangs {hangs}  peak RSS {stats['peak_rss_mb']:.0f} MB", flush=True)
    for f in stats.get("findings", []):
        print(f"    finding: {f if isinstance(f, str) else f[0]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        sep = argv.index("--")
        atheris_worker(argv[1], Path(argv[3]), argv[sep + 1:])
        return 0
    import fuzz_targets
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", choices=sorted(fuzz_targets.TARGETS),
                        help="a target to run (repeatable); default every target")
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--engine", choices=("atheris", "builtin"), default="atheris")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at the same time (one core each)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take before it is a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nice", type=int, default=0, help="niceness of the fuzzing processes")
    parser.add_argument("--max-restarts", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/medvault-fuzz"))
    parser.add_argument("--update-corpus", action="store_true", help="merge new small coverage into the corpus")
    parser.add_argument("--write-seeds", action="store_true", help="regenerate the seed inputs and stop")
    parser.add_argument("--gateway-socket", type=int, default=0, help="requests over real sockets, then stop")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    names = args.target or list(fuzz_targets.TARGETS)

    if args.list:
        for n, t in fuzz_targets.TARGETS.items():
            print(f"{n:<15} {t.what}")
        return 0
    if args.write_seeds:
        for n in names:
            print(f"{n:<15} {write_seeds(n)} seeds")
        return 0
    if args.gateway_socket:
        counts = gateway_socket_run(args.gateway_socket, args.seed)
        print(json.dumps(counts))
        return 0 if counts["still_serving"] else 1

    print(f"engine {args.engine}, {args.inputs:,} inputs per target, {len(names)} targets, "
          f"{args.jobs} at a time, per-input bound {args.timeout} s", flush=True)
    results: list[dict] = []
    if args.engine == "builtin":
        for n in names:
            stats = burst(n, args.inputs, seed=args.seed, time_bound=args.timeout,
                          findings=args.workdir / n / "findings")
            stats["findings"] = [f for f, _ in stats["findings"]]
            _print(stats)
            results.append(stats)
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for stats in pool.map(lambda n: run_atheris(n, args.inputs, args, args.workdir), names):
                _print(stats)
                results.append(stats)
                if args.update_corpus:
                    kept = update_corpus(stats["target"], args.workdir, fuzz_targets.TARGETS[stats["target"]].max_len)
                    print(f"    corpus: {kept} new input(s) kept", flush=True)
    total = sum(r["inputs"] for r in results)
    bad = sum(len(r["findings"]) + len(r["hangs"]) + len(r.get("oom", [])) for r in results)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"total {total:,} inputs, {bad} finding(s) and hang(s), peak RSS of any process "
          f"{max([children] + [r['peak_rss_mb'] for r in results]):.0f} MB", flush=True)
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k not in ("crashes",)} for r in results],
                                        indent=1, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
