"""A real js-ipfs daemon on loopback for tests, started from the project's ``node_modules``.

The node is offline and isolated: a temporary repo (``IPFS_PATH``), the ``test`` profile, an empty bootstrap list,
no swarm listeners, no MDNS or other discovery, and the API, gateway and gRPC ports on free loopback ports.
It is stopped through its own process group, so nothing else on the machine is touched.

Use it from any test directory::

    from tests.peers.ipfs import running_ipfs_node

    with running_ipfs_node() as node:
        node.api_multiaddr, node.api_url, node.gateway_url

``tests`` is a namespace package (no ``__init__.py``): it imports because the test command runs
``python -m pytest`` from the project root, which puts the root on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
JSIPFS = REPO_ROOT / "node_modules" / ".bin" / "jsipfs"
POLYFILL = Path(__file__).resolve().parent / "node_polyfills.cjs"
PARENT_WATCH = Path(__file__).resolve().parent / "node_parent_watch.cjs"


class IpfsPeerError(RuntimeError):
    pass


@dataclass
class IpfsNode:
    api_port: int
    gateway_port: int
    repo: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    @property
    def api_multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.api_port}/http"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def freeze(self) -> None:
        """Stop the daemon from running (SIGSTOP): it keeps its sockets open but answers nothing."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["IPFS_PATH"] = str(repo)
    # Promise.withResolvers is missing from Node 20; see node_polyfills.cjs.
    env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + f' --require "{POLYFILL}" --require "{PARENT_WATCH}"').strip()
    env["MEDVAULT_PEER_PARENT"] = str(os.getpid())
    env.pop("IPFS_MONITORING", None)
    return env


def _configure(repo: Path, api: int, gateway: int, rpc: int) -> None:
    path = repo / "config"
    config = json.loads(path.read_text())
    config["Addresses"] = {
        "Swarm": [],
        "Announce": [],
        "NoAnnounce": [],
        "API": f"/ip4/127.0.0.1/tcp/{api}",
        "Gateway": f"/ip4/127.0.0.1/tcp/{gateway}",
        "RPC": f"/ip4/127.0.0.1/tcp/{rpc}",
        "Delegates": [],
    }
    config["Bootstrap"] = []
    config.setdefault("Discovery", {})
    config["Discovery"]["MDNS"] = {"Enabled": False, "Interval": 10}
    config["Discovery"]["webRTCStar"] = {"Enabled": False}
    config.setdefault("Swarm", {})["DisableNatPortMap"] = True
    path.write_text(json.dumps(config, indent=2))


def _api_answers(api_port: int) -> bool:
    req = urllib.request.Request(f"http://127.0.0.1:{api_port}/api/v0/id", method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200 and b'"ID"' in resp.read()
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGCONT)  # a frozen node cannot handle SIGTERM
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _start_once(workdir: Path, startup_timeout: float) -> IpfsNode:
    repo = workdir / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    env = _env(repo)
    init = subprocess.run([str(JSIPFS), "init", "--profile", "test"], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=120)
    if init.returncode != 0:
        raise IpfsPeerError(f"jsipfs init failed ({init.returncode}): {init.stderr[-2000:]}")
    api, gateway, rpc = free_port(), free_port(), free_port()
    _configure(repo, api, gateway, rpc)
    log_path = workdir / "daemon.log"
    log = open(log_path, "wb")
    try:
        process = subprocess.Popen([str(JSIPFS), "daemon", "--offline"], env=env, cwd=workdir,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own process group, stopped as one
    finally:
        log.close()
    node = IpfsNode(api, gateway, repo, log_path, process)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise IpfsPeerError(f"jsipfs daemon exited with {process.returncode}: {node.log()}")
        if _api_answers(api):
            return node
        time.sleep(0.25)
    _stop(process)
    raise IpfsPeerError(f"jsipfs daemon did not answer within {startup_timeout}s: {node.log()}")


@contextlib.contextmanager
def running_ipfs_node(startup_timeout: float = 90.0, attempts: int = 2) -> Iterator[IpfsNode]:
    """Start a js-ipfs daemon, yield it once ``/api/v0/id`` answers, and stop it (and its children) afterwards."""
    if not JSIPFS.exists():
        raise IpfsPeerError(f"{JSIPFS} is missing: install the test peers with `npm ci` in {REPO_ROOT}")
    for helper in (POLYFILL, PARENT_WATCH):
        if not helper.exists():
            raise IpfsPeerError(f"{helper} is missing")
    workdir = Path(tempfile.mkdtemp(prefix="medvault-ipfs-"))
    node = None
    try:
        for attempt in range(attempts):
            try:
                node = _start_once(workdir, startup_timeout)
                break
            except IpfsPeerError:
                # A free port can be taken between choosing it and the daemon binding it; try once more.
                if attempt == attempts - 1:
                    raise
        yield node
    finally:
        if node is not None:
            _stop(node.process)
        shutil.rmtree(workdir, ignore_errors=True)
