"""The real `helix serve`, started for the tests on free loopback ports and stopped after.

`HELIX_BIN` is the `helix` binary and `HELIX_MANIFESTS` a manifests folder with the Wasm
kernels staged (`cargo xtask test` runs these tests with both set, through
`host/tests/python_client.rs`). Every server serves its own copy of that folder, so uploads
and reloads never write into the repository."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import helix_router

TOKEN = "python-client-test-token"
REPO = Path(__file__).resolve().parents[3]
HOW = (
    "run `cargo xtask test` (it builds helix, stages the Wasm kernels and runs these tests), or set "
    "HELIX_BIN=target/release/helix and HELIX_MANIFESTS=manifests after `cargo xtask kernels`"
)

# Bounds on a server's start and stop, so a broken build fails the tests instead of hanging them.
READY_WITHIN_S = 60.0
EXIT_WITHIN_S = 60.0


def required_path(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        pytest.fail(f"{var} is not set: {HOW}", pytrace=False)
    path = Path(value)
    if not path.exists():
        pytest.fail(f"{var}={value} does not exist: {HOW}", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """One running `helix serve`: its URL, manifests folder and log."""

    process: subprocess.Popen
    url: str
    manifests: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def client(self, **options) -> helix_router.Client:
        return helix_router.Client(self.url, **options)

    def sigterm(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """SIGTERM (the server drains), then waits; a server that does not exit is killed."""
        self.sigterm()
        try:
            return self.process.wait(timeout=EXIT_WITHIN_S)
        except subprocess.TimeoutExpired as late:
            self.process.kill()
            self.process.wait()
            message = f"helix serve did not exit within {EXIT_WITHIN_S} s of SIGTERM:\n{self.log_text()}"
            raise AssertionError(message) from late


def start_server(folder: Path, config: str = "", token: str | None = TOKEN) -> Server:
    """Starts `helix serve` on a free loopback port with a copy of `HELIX_MANIFESTS` in
    `folder/manifests` and `config` (TOML), and waits until `/readyz` says ready."""
    binary = required_path("HELIX_BIN")
    source = required_path("HELIX_MANIFESTS")
    if not (source / "wasm" / "mc-option.toml").exists():
        pytest.fail(f"{source}/wasm holds no staged Wasm kernels: {HOW}", pytrace=False)
    manifests = folder / "manifests"
    shutil.copytree(source, manifests)
    config_path = folder / "helix.toml"
    # No summary lines: the log is for reading when a test fails.
    config_path.write_text(f"summary_interval_s = 0\n{config}")
    port = free_port()
    log = folder / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "HELIX_ADMIN_TOKEN"}
    if token is not None:
        env["HELIX_ADMIN_TOKEN"] = token
    env.setdefault("RUST_LOG", "info")
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [
                str(binary),
                "serve",
                "--config",
                str(config_path),
                "--listen",
                f"127.0.0.1:{port}",
                "--manifests",
                str(manifests),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            env=env,
        )
    server = Server(process=process, url=f"http://127.0.0.1:{port}", manifests=manifests, log=log)
    deadline = time.monotonic() + READY_WITHIN_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"helix serve exited with {process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"helix serve was not ready within {READY_WITHIN_S} s:\n{server.log_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A server with the defaults and an admin token, shared by the tests that only submit."""
    s = start_server(tmp_path_factory.mktemp("shared"))
    yield s
    assert s.stop() == 0, s.log_text()


@pytest.fixture
def helix(server):
    with server.client(admin_token=TOKEN) as c:
        yield c


@pytest.fixture
def own_server(tmp_path):
    """A function's own server factory: `own_server(config, token=...)`; each is stopped after
    the test (and must exit 0, a drained shutdown)."""
    started: list[Server] = []

    def start(config: str = "", token: str | None = TOKEN) -> Server:
        s = start_server(tmp_path / f"server{len(started)}", config, token)
        started.append(s)
        return s

    yield start
    codes = [(s.stop(), s) for s in started]
    for code, s in codes:
        assert code == 0, f"helix serve exited {code}:\n{s.log_text()}"
