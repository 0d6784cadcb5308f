"""Start and stop a real ganache JSON-RPC node on loopback for integration tests.

The node runs from the project-local ``node_modules`` in its own process group, on a free loopback port, with a
database directory the caller owns, so a test can stop it and start it again on the same chain state. Only the
process started here is ever signalled.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GANACHE_CLI = ROOT / "node_modules" / "ganache" / "dist" / "node" / "cli.js"
# Fixed mnemonic: the funded accounts (and their keys) are the same on every start, including restarts.
MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 1337


def _die_with_parent() -> None:
    """In the child before exec: if the test process is killed outright (no teardown), the kernel stops the node
    too, so a killed test run leaves no orphaned ganache behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the fixture teardown still stops it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(url: str, method: str, params: list | None = None, timeout: float = 2.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


class Ganache:
    def __init__(
        self,
        db_path: Path,
        *,
        port: int | None = None,
        chain_id: int = CHAIN_ID,
        free_gas: bool = False,
        block_time: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.port = port or free_port()
        self.chain_id = chain_id
        self.free_gas = free_gas
        self.block_time = block_time  # 0: a block per transaction at once; N: a block every N s, like a real network
        self.log_path = log_path or self.db_path.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        args = [
            "node",
            str(GANACHE_CLI),
            "--server.host", "127.0.0.1",
            "--server.port", str(self.port),
            "--chain.chainId", str(self.chain_id),
            "--database.dbPath", str(self.db_path),
            "--wallet.mnemonic", MNEMONIC,
            "--wallet.totalAccounts", "5",
            "--logging.quiet",
        ]
        if self.free_gas:
            # What a consortium network looks like: no base fee (pre-London rules) and a zero gas price.
            args += ["--chain.hardfork", "berlin", "--miner.defaultGasPrice", "0"]
        if self.block_time:
            args += ["--miner.blockTime", str(self.block_time)]
        return args

    def start(self, timeout: float = 60.0) -> Ganache:
        if not GANACHE_CLI.exists():
            raise RuntimeError(f"ganache is not installed at {GANACHE_CLI}; run npm install in the project root")
        self.db_path.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ganache exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if int(str(rpc(self.url, "eth_chainId")), 16) == self.chain_id:
                    return self
            except (OSError, urllib.error.URLError, RuntimeError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ganache did not answer eth_chainId within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        """Stop the node (its whole process group) and wait, so the database is closed before a restart."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def restart(self) -> Ganache:
        self.stop()
        return self.start()

    def __enter__(self) -> Ganache:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def account_keys(count: int = 5) -> list[bytes]:
    """Private keys of ganache's funded accounts for MNEMONIC (standard BIP-44 path)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return [
        bytes(Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key) for i in range(count)
    ]
