"""SIGKILL the real ``medvault`` command at random moments of import, share create, revoke, passwd and chain sync,
then check what it left on disk.

    nice -n 19 .venv/bin/python bench/kill.py [--kills 1000] [--seed 1] [--ops import,ndjson,...] [--json]

Each kill runs ``python -m app`` (what the ``medvault`` entry point runs) on a fresh copy of a template vault made
once at the start (re-running the KDF and the first import for every kill would cost more than the kills), sends
SIGKILL to its process group after a random delay, and then, in this process:

- the folder is searched for the patients' names in clear (the vault folder, the command's TMPDIR, HOME and state
  folder: a staged or temporary file holding plaintext counts as a leak);
- the vault is unlocked (``Vault.unlock``; for passwd with the old and the new passphrase, exactly one must work),
  and ``verify()`` checks every database page and the audit chain;
- each operation's all-or-nothing invariant: an import leaves the record count at the count before or before plus
  the whole file's count; a created share exists with its file or not at all, and leaves no orphan file; a revoked
  share is revoked without its file or still active with it; a chain sync leaves every consent change pending or
  recorded with a transaction the node really has, and a second sync then finishes without a refusal.

The delay is drawn uniformly between the command's start-up time (``medvault --version``) and 1.1 times the
operation's own duration (measured at the start, then kept up to date with the runs that finished before their
kill, as the machine's load changes), so the kills spread over the work, its commit, fsync and rename moments,
and a few land after the command finished (counted separately). The chain is a ganache node on
loopback started here and stopped by its process id at the end; its state is rewound (``evm_revert``) before each
chain-sync kill so every kill sends real transactions.

Exit status 1 when any vault failed to open or verify, an import or share was partial, or plaintext was found.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import FIXTURES  # noqa: E402  (third-party data, kept outside the repository)

SYNTHEA = FIXTURES / "synthea"
BASE_PATIENT = "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"          # the vault's own person
IMPORT_FILE = "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"       # 1,111 entries, 3.9 MB
NDJSON_PATIENT = "Juliette_Padberg_4acd4ca8-d54b-47f4-bd13-051276711265.json"  # exported to NDJSON once
# Strings that appear in the fixtures' clear text and nowhere in ciphertext by chance.
PHI_MARKERS = (b"Hintz", b"Hyatt", b"Padberg")

PASSPHRASE = "correct horse battery staple"
NEW_PASSPHRASE = "another passphrase after passwd"
PROFILE = "test-insecure"
OPS = ("import", "ndjson", "share", "revoke", "passwd", "chain")
CALIBRATION_RUNS = 3


# --- running the command ------------------------------------------------------------------------------------------

def _env(trial: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDVAULT_")}
    for name in ("tmp", "home", "state", "config"):
        (trial / name).mkdir(parents=True, exist_ok=True)
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "MEDVAULT_PASSPHRASE": PASSPHRASE, "TMPDIR": str(trial / "tmp"),
                "HOME": str(trial / "home"), "XDG_STATE_HOME": str(trial / "state"),
                "XDG_CONFIG_HOME": str(trial / "config"), **(extra or {})})
    return env


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    # Its own process group, so the kill also takes any worker it started (a power cut would, too).
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def run(args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    proc = _start(args, env)
    out, err = proc.communicate(timeout=600)
    if proc.returncode not in ok:
        raise RuntimeError(f"medvault {' '.join(args[2:4])} exited {proc.returncode}: {err.decode()[-400:]}")
    return out.decode()


def run_and_kill(args: list[str], env: dict[str, str], delay: float) -> tuple[bool, float, int | None]:
    """Start the command, SIGKILL its group after ``delay`` s. Returns (killed while running, its run time, the exit
    status if it finished first)."""
    start = time.monotonic()
    proc = _start(args, env)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    landed = proc.poll() is None
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()
    return landed, time.monotonic() - start, None if landed else proc.returncode


# --- the chain ----------------------------------------------------------------------------------------------------

class Node:
    """A ganache node on loopback for the chain-sync kills; stopped by its own process id."""

    def __init__(self, folder: Path) -> None:
        from tests.peers.ganache import Ganache
        self.ganache = Ganache(folder / "ganache-db", log_path=folder / "ganache.log")
        self.snapshot: str | None = None

    @property
    def url(self) -> str:
        return self.ganache.url

    def rpc(self, method: str, params: list | None = None) -> Any:
        from tests.peers.ganache import rpc
        return rpc(self.url, method, params, timeout=10)

    def mark(self) -> None:
        self.snapshot = self.rpc("evm_snapshot")

    def rewind(self) -> None:
        # A snapshot is used up by reverting to it: take it again at once for the next kill.
        assert self.rpc("evm_revert", [self.snapshot]) is True
        self.mark()

    def has_transaction(self, tx_hash: str) -> bool:
        receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
        return bool(receipt) and int(receipt["status"], 16) == 1


# --- templates ------------------------------------------------------------------------------------------------------

@dataclass
class Setup:
    work: Path
    base: Path                      # the vault's own patient and two open shares
    chain: Path | None              # base + a consent network + consent changes waiting in its outbox
    ndjson: Path
    share_ids: list[str]
    node: Node | None = None


def _vault_args(folder: Path, *args: str) -> list[str]:
    return ["--vault", str(folder), *args]


def _share_ids(folder: Path, env: dict[str, str]) -> list[str]:
    return [s["id"] for s in json.loads(run(_vault_args(folder, "share", "list", "--json"), env))
            if s["state"] == "active"]


def prepare(work: Path, with_chain: bool, with_ndjson: bool = True) -> Setup:
    env = _env(work / "setup")
    base = work / "base" / "v"
    run(_vault_args(base, "init", "--kdf-profile", PROFILE), env)
    run(_vault_args(base, "import", str(SYNTHEA / BASE_PATIENT)), env)
    for _ in range(2):
        run(_vault_args(base, "share", "create", "--ips", "--expires", "30d"), env)
    share_ids = _share_ids(base, env)

    # The NDJSON file: another patient exported by medvault itself, kept outside every vault copy.
    ndjson = work / "inputs" / "padberg.ndjson"
    if with_ndjson:
        other = work / "ndjson-source" / "v"
        run(_vault_args(other, "init", "--kdf-profile", PROFILE), env)
        run(_vault_args(other, "import", str(SYNTHEA / NDJSON_PATIENT)), env)
        ndjson.parent.mkdir()
        run(_vault_args(other, "export", "--format", "ndjson", "-o", str(ndjson)), env)
        shutil.rmtree(other.parent)

    setup = Setup(work, base, None, ndjson, share_ids)
    if with_chain:
        setup.node = Node(work)
        setup.node.ganache.start()
        chain = work / "chain" / "v"
        shutil.copytree(base, chain)
        run(_vault_args(chain, "chain", "deploy", "--rpc", setup.node.url, "--pay-with-node-account"), env)
        # Offline, every consent change waits in the outbox: two grants and a revoke for the sync to send.
        setup.node.ganache.stop()
        for _ in range(2):
            run(_vault_args(chain, "share", "create", "--ips", "--expires", "30d"), env)
        run(_vault_args(chain, "share", "revoke", _share_ids(chain, env)[-1]), env)
        setup.node.ganache.start()
        setup.node.mark()
        setup.chain = chain
    return setup


# --- what a vault holds -----------------------------------------------------------------------------------------------

@dataclass
class State:
    records: int
    shares: dict[str, tuple[str, str]]     # id -> (state, cid)
    blobs: set[str]
    outbox: list[tuple[int, str, str | None]]   # id, state, tx


def read_state(vault: Any) -> State:
    with vault.read() as conn:
        records = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
        shares = {i: (s, c) for i, s, c in conn.execute("SELECT id, state, cid FROM shares")}
        blobs = {c for (c,) in conn.execute("SELECT cid FROM share_blobs")}
        outbox = list(conn.execute("SELECT id, state, tx_hash FROM chain_outbox ORDER BY id"))
    return State(records, shares, blobs, outbox)


def open_vault(folder: Path, passphrases: tuple[str, ...]) -> tuple[Any, list[str]]:
    """The vault unlocked with the one passphrase that opens it, and which ones did."""
    from vault.errors import WrongPassphrase
    from vault.store import Vault
    which = []
    for passphrase in passphrases[1:]:
        # one open vault at a time (it holds the folder's lock): try the others first, keep the first one open
        try:
            Vault.unlock(folder, passphrase).close()
            which.append(passphrase)
        except WrongPassphrase:
            pass
    try:
        return Vault.unlock(folder, passphrases[0]), [passphrases[0], *which]
    except WrongPassphrase:
        return (Vault.unlock(folder, which[0]) if which else None), which


def plaintext_files(trial: Path) -> list[str]:
    found = []
    for path in trial.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(marker in data for marker in PHI_MARKERS):
                found.append(str(path.relative_to(trial)))
    return found


# --- one operation family ---------------------------------------------------------------------------------------------

@dataclass
class Op:
    name: str
    template: Callable[[Setup], Path]
    args: Callable[[Setup, Path], list[str]]
    extra_env: dict[str, str] = field(default_factory=dict)
    passphrases: tuple[str, ...] = (PASSPHRASE,)
    before: State | None = None
    after: State | None = None          # what an uninterrupted run leaves
    durations: list[float] = field(default_factory=list)

    @property
    def duration(self) -> float:
        # the recent runs only: on a shared machine the load, and so the run time, changes during the campaign
        return statistics.median(self.durations[-7:])


def operations(setup: Setup) -> dict[str, Op]:
    base = lambda s: s.base  # noqa: E731
    ops = {
        "import": Op("import", base,
                     lambda s, v: _vault_args(v, "import", "--other-person", str(SYNTHEA / IMPORT_FILE))),
        "ndjson": Op("ndjson", base, lambda s, v: _vault_args(v, "import", "--other-person", str(s.ndjson))),
        "share": Op("share", base, lambda s, v: _vault_args(v, "share", "create", "--ips", "--expires", "30d")),
        "revoke": Op("revoke", base, lambda s, v: _vault_args(v, "share", "revoke", s.share_ids[0])),
        "passwd": Op("passwd", base, lambda s, v: _vault_args(v, "passwd"),
                     extra_env={"MEDVAULT_NEW_PASSPHRASE": NEW_PASSPHRASE},
                     passphrases=(PASSPHRASE, NEW_PASSPHRASE)),
    }
    if setup.chain is not None:
        ops["chain"] = Op("chain", lambda s: s.chain, lambda s, v: _vault_args(v, "chain", "sync"))
    return ops


def fresh_copy(setup: Setup, op: Op, trial: Path) -> Path:
    if trial.exists():
        shutil.rmtree(trial)
    folder = trial / "v"
    shutil.copytree(op.template(setup), folder)
    if op.name == "chain":
        setup.node.rewind()
    return folder


def calibrate(setup: Setup, op: Op, trial: Path, runs: int = CALIBRATION_RUNS) -> None:
    from vault.store import Vault
    for _ in range(runs):
        folder = fresh_copy(setup, op, trial)
        with Vault.unlock(folder, PASSPHRASE) as vault:
            op.before = read_state(vault)
        # the unlock above adds an audit entry: start the timed run from the template itself
        folder = fresh_copy(setup, op, trial)
        start = time.monotonic()
        run(op.args(setup, folder), _env(trial, op.extra_env), ok=(0,))
        op.durations.append(time.monotonic() - start)
        vault, _ = open_vault(folder, op.passphrases[::-1])
        with vault:
            op.after = read_state(vault)


def check(setup: Setup, op: Op, folder: Path) -> dict[str, Any]:
    """What the kill left: opened, verified, all-or-nothing, which side of the commit."""
    result: dict[str, Any] = {"open": False, "verify": False, "partial": None, "outcome": None}
    vault, which = open_vault(folder, op.passphrases)
    if vault is None or len(which) != 1:
        result["why"] = f"opened with {len(which)} of the passphrases"
        if vault is not None:
            vault.close()
        return result
    with vault:
        result["open"] = True
        report = vault.verify()
        result["verify"] = report.intact
        if not report.intact:
            result["why"] = report.sentence()
        state = read_state(vault)
        partial, outcome = invariant(setup, op, state, which[0], vault)
    result["partial"], result["outcome"] = partial, outcome
    return result


def invariant(setup: Setup, op: Op, state: State, passphrase: str, vault: Any) -> tuple[str | None, str]:
    """(what is partial, or None; "old" or "new": which side of the operation the vault is on)."""
    before, after = op.before, op.after
    orphans = state.blobs - {cid for _, (st, cid) in state.shares.items() if st == "active"}
    if op.name in ("import", "ndjson", "passwd"):
        if state.records not in (before.records, after.records):
            return f"{state.records} records, expected {before.records} or {after.records}", "partial"
        if op.name == "passwd":
            side = "new" if passphrase == NEW_PASSPHRASE else "old"
            if state.records != before.records or state.shares != before.shares:
                return "records or shares changed by passwd", side
            return None, side
        return None, "new" if state.records == after.records else "old"
    if op.name == "share":
        new = set(state.shares) - set(before.shares)
        if orphans:
            return f"{len(orphans)} share file(s) without an active share", "partial"
        if not new:
            return None, "old"
        if len(new) > 1:
            return f"{len(new)} new shares", "partial"
        (share_id,) = new
        st, cid = state.shares[share_id]
        if st != "active" or cid not in state.blobs:
            return "a new share without its file", "partial"
        return None, "new"
    if op.name == "revoke":
        st, cid = state.shares[setup.share_ids[0]]
        if st == "active" and cid in state.blobs:
            return None, "old"
        if st == "revoked" and cid not in state.blobs:
            return None, "new"
        return f"share {st} with its file {'kept' if cid in state.blobs else 'deleted'}", "partial"
    if op.name == "chain":
        for entry_id, st, tx in state.outbox:
            if st == "failed":
                return f"consent change {entry_id} marked refused", "partial"
            if st == "anchored" and not setup.node.has_transaction(tx):
                return f"consent change {entry_id} recorded with a transaction the node does not have", "partial"
        sent = sum(1 for _, st, _ in state.outbox if st == "anchored")
        side = "old" if sent == sum(1 for _, st, _ in before.outbox if st == "anchored") else (
            "new" if all(st == "anchored" for _, st, _ in state.outbox) else "between")
        # after a kill the next sync must finish the job: what was sent is found on the chain, nothing refused
        from app.services import chain
        report = chain.sync(vault)
        if report.failed or report.unavailable is not None:
            return "the sync after the kill did not finish", side
        if any(st != "anchored" for _, st, _ in read_state(vault).outbox):
            return "consent changes still waiting after a full sync", side
        return None, side
    raise ValueError(op.name)


# --- the loop ---------------------------------------------------------------------------------------------------------

@dataclass
class Tally:
    kills: Counter = field(default_factory=Counter)
    mid: Counter = field(default_factory=Counter)
    open_fail: Counter = field(default_factory=Counter)
    verify_fail: Counter = field(default_factory=Counter)
    partial: Counter = field(default_factory=Counter)
    leaks: Counter = field(default_factory=Counter)
    outcomes: dict = field(default_factory=lambda: defaultdict(Counter))
    failures: list = field(default_factory=list)
    errors: list = field(default_factory=list)      # runs that failed on their own, before any kill (a node too
                                                    # slow under load): shown, but no crash-safety finding

    def bad(self) -> int:
        return sum(self.open_fail.values()) + sum(self.verify_fail.values()) + sum(self.partial.values()) + sum(
            self.leaks.values())


def startup_time(work: Path) -> float:
    env = _env(work / "startup")
    times = []
    for _ in range(3):
        start = time.monotonic()
        run(["--version"], env)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def kill_loop(setup: Setup, ops: dict[str, Op], kills: int, seed: int, startup: float,
              say: Callable[[str], None] = print, verbose: bool = False, late_first: bool = False) -> Tally:
    """``late_first``: the first kill comes well after its command should have finished, so a short run sees the
    checks recognise a completed operation whatever the random delays of the others (a handful of random kills
    may all land before the commit)."""
    rng = random.Random(seed)
    names = list(ops)
    schedule = [names[i % len(names)] for i in range(kills)]
    rng.shuffle(schedule)
    tally = Tally()
    trial = setup.work / "trial"
    keep = setup.work / "failed"
    for n, name in enumerate(schedule, 1):
        op = ops[name]
        folder = fresh_copy(setup, op, trial)
        delay = rng.uniform(startup, op.duration * 1.1)
        if late_first and n == 1:
            delay = op.duration * 3 + 1.0
        landed, took, status = run_and_kill(op.args(setup, folder), _env(trial, op.extra_env), delay)
        if status == 0:
            op.durations.append(took)   # it finished before the kill: a fresh measure of its run time
        tally.kills[name] += 1
        tally.mid[name] += landed
        if status not in (None, 0):
            tally.errors.append((n, name, f"finished unkilled with exit status {status}"))
        leaked = plaintext_files(trial)
        if leaked:
            tally.leaks[name] += 1
            tally.failures.append((n, name, f"plaintext in {leaked}"))
        try:
            result = check(setup, op, folder)
        except Exception as exc:  # noqa: BLE001 - anything the open or the checks raise is a finding to count
            result = {"open": False, "verify": False, "partial": None, "outcome": None,
                      "why": f"{type(exc).__name__}: {exc}"}
        tally.outcomes[name][result["outcome"] or "none"] += 1
        if not result["open"]:
            tally.open_fail[name] += 1
        elif not result["verify"]:
            tally.verify_fail[name] += 1
        if result["partial"]:
            tally.partial[name] += 1
        if not result["open"] or not result["verify"] or result["partial"]:
            why = result.get("why") or result["partial"]
            tally.failures.append((n, name, f"delay {delay:.3f}s: {why}"))
            if not keep.exists() or len(list(keep.iterdir())) < 10:   # the first few, for a post-mortem
                shutil.copytree(trial, keep / f"{n}-{name}", symlinks=True)
        if verbose:
            problem = result.get("why") or result["partial"]
            say(f"  kill {n} {name}: delay {delay:.3f}s, {'mid-op' if landed else 'after exit'}, "
                f"{result['outcome']}{', ' + problem if problem else ''}")
        if n % 50 == 0:
            say(f"  {n}/{kills} kills, {tally.bad()} problem(s)")
    return tally


@dataclass
class Campaign:
    tally: Tally
    ops: dict[str, Op]
    startup: float
    seconds: float          # the kill loop alone


def campaign(work: Path, wanted: list[str], kills: int, seed: int, *, calibration_runs: int = CALIBRATION_RUNS,
             say: Callable[[str], None] = print, verbose: bool = False, late_first: bool = False) -> Campaign:
    """Templates, measured durations, then the kills; the chain node (if any) is stopped before returning."""
    setup = None
    try:
        setup = prepare(work, with_chain="chain" in wanted, with_ndjson="ndjson" in wanted)
        all_ops = operations(setup)
        ops = {name: all_ops[name] for name in wanted}
        startup = startup_time(work)
        for op in ops.values():
            calibrate(setup, op, work / "trial", calibration_runs)
        say(f"templates ready; {kills} kills, seed {seed}")
        start = time.monotonic()
        tally = kill_loop(setup, ops, kills, seed, startup, say=say, verbose=verbose, late_first=late_first)
        return Campaign(tally, ops, startup, time.monotonic() - start)
    finally:
        if setup is not None and setup.node is not None:
            setup.node.ganache.stop()


def report(outcome: Campaign) -> list[str]:
    tally, ops, startup, seconds = outcome.tally, outcome.ops, outcome.startup, outcome.seconds
    lines = [f"CLI start-up (medvault --version): {startup:.2f} s"]
    lines += [f"{name:<7} run time {op.duration:.2f} s (median of its last uninterrupted runs)"
              for name, op in ops.items()]
    head = f"{'op':<7} {'kills':>6} {'mid-op':>7} {'old':>5} {'new':>5} {'other':>5} {'no-open':>8} " \
           f"{'verify':>7} {'partial':>8} {'leaks':>6}"
    lines += ["", head]
    for name in ops:
        o = tally.outcomes[name]
        lines.append(f"{name:<7} {tally.kills[name]:>6} {tally.mid[name]:>7} {o['old']:>5} {o['new']:>5} "
                     f"{sum(o.values()) - o['old'] - o['new']:>5} {tally.open_fail[name]:>8} "
                     f"{tally.verify_fail[name]:>7} {tally.partial[name]:>8} {tally.leaks[name]:>6}")
    total = sum(tally.kills.values())
    mid = sum(tally.mid.values())
    lines.append(f"{'total':<7} {total:>6} {mid:>7}")
    lines.append("")
    lines.append(f"kills landing before the command finished: {mid}/{total} ({100 * mid / max(total, 1):.0f}%)")
    lines.append(f"vaults failing to open: {sum(tally.open_fail.values())}; verify failures: "
                 f"{sum(tally.verify_fail.values())}; partial imports/shares: {sum(tally.partial.values())}; "
                 f"plaintext leaks: {sum(tally.leaks.values())}")
    lines.append(f"time: {seconds:.0f} s ({seconds / max(total, 1):.2f} s per kill)")
    if tally.errors:
        lines.append(f"commands that failed on their own before the kill: {len(tally.errors)}")
    for n, name, why in (tally.failures + tally.errors)[:20]:
        lines.append(f"  kill {n} ({name}): {why}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated subset of {','.join(OPS)}")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed) at the end")
    parser.add_argument("--json", action="store_true", help="also print the counts as one JSON line")
    parser.add_argument("--verbose", action="store_true", help="one line per kill")
    args = parser.parse_args(argv)
    wanted = [o for o in args.ops.split(",") if o]
    if set(wanted) - set(OPS):
        parser.error(f"unknown operation(s): {sorted(set(wanted) - set(OPS))}")
    if not (SYNTHEA / IMPORT_FILE).exists():
        print(f"the Synthea fixtures are missing at {SYNTHEA}", file=sys.stderr)
        return 2

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="medvault-kill-"))
    try:
        outcome = campaign(work, wanted, args.kills, args.seed, say=lambda s: print(s, flush=True),
                           verbose=args.verbose)
        print("\n".join(report(outcome)))
        print(f"total with set-up: {time.monotonic() - started:.0f} s")
        if args.json:
            tally = outcome.tally
            print(json.dumps({"kills": dict(tally.kills), "mid": dict(tally.mid),
                              "open_fail": dict(tally.open_fail), "verify_fail": dict(tally.verify_fail),
                              "partial": dict(tally.partial), "leaks": dict(tally.leaks),
                              "failed_on_their_own": len(tally.errors),
                              "outcomes": {k: dict(v) for k, v in tally.outcomes.items()}}))
        return 1 if outcome.tally.bad() else 0
    finally:
        if args.keep or (work / "failed").exists():
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
