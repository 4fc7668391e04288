"""Fixtures of the relay tests: in-process relays on loopback, relay subprocesses, a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nacl.signing
import pytest

from relay.limits import Limits
from relay.serve import build_server
from relay.ws import RelayServer

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run one async test body with a hard time bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def new_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


@contextlib.asynccontextmanager
async def relay(
    db: str | Path,
    *,
    limits: Limits | None = None,
    redis: str | None = None,
    authorities: frozenset[bytes] = frozenset(),
    metadata_log: str | None = None,
    prefix: str = "pocketscan:",
) -> AsyncIterator[RelayServer]:
    """A real relay on an ephemeral loopback port, in this process."""
    server = build_server(
        port=0,
        db=str(db),
        redis=redis,
        limits=limits,
        authorities=authorities,
        metadata_log=metadata_log,
        redis_prefix=prefix,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class RelayProcess:
    """A real `pocketscan relay` subprocess."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from client.cli.main import main; raise SystemExit(main())",
                "relay",
                "--port",
                "0",
                "--quiet",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"relay did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.url = json.loads(line)["listening"]

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis: POCKETSCAN_TEST_REDIS, or a redis-server started on a free loopback port."""
    env = os.environ.get("POCKETSCAN_TEST_REDIS")
    if env:
        yield env
        return
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("no Redis: install redis-server or set POCKETSCAN_TEST_REDIS=redis://host:port/db")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.skip("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to one test, so tests sharing a Redis never see each other's keys."""
    return f"pstest:{uuid.uuid4().hex[:10]}:"
