"""`pocketscan bench relay`: relay messages/s and latency beside a bare `websockets` echo server.

In one run, on loopback, with the same client code and load shape:

* ``echo``: a bare ``websockets`` server (a subprocess) that sends every binary frame back; each of
  the N clients keeps ``--window`` frames in flight. This is the ceiling: one frame in, one out,
  no storage.
* ``relay``: a real ``pocketscan relay`` subprocess (SQLite in WAL mode, synchronous=FULL, group
  commit); client i sends to client i+1 through ``RelayConnection``, keeping ``--window`` sends in
  flight; each message is stored durably before the sender's ``ok``, pushed to the recipient, and
  deleted on the recipient's ``ack``. Latency is from ``send`` to the recipient's receipt.

Messages/s counts messages that reached their recipient during the measured seconds (after a
warm-up). The clients run in this process; the servers in their own processes (2 cores: the
figures are bounded by both). Servers and load generator use the same event loop (uvloop when
installed). Ratio = relay / echo. The CPU columns (server and load-generator CPU time per
delivered message) stay meaningful on a busy machine, where the rates do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry

__all__ = ["BenchResult", "register", "run_bench"]

T = TypeVar("T")


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench relay``."""
    bench = registry.group("bench")
    parser = bench.command(
        "relay",
        _handle,
        help="relay msgs/s and p50/p99 latency beside a bare websockets echo",
        description=__doc__,
    )
    parser.add_argument(
        "--clients", type=int, default=100, help="concurrent client connections (default 100)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per system (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before measuring")
    parser.add_argument("--window", type=int, default=1, help="messages in flight per client (default 1)")
    parser.add_argument("--size", type=int, default=256, help="envelope bytes (default 256)")
    parser.add_argument("--redis", metavar="URL", help="also measure a relay on this Redis")
    parser.add_argument("--sync", choices=("full", "normal"), default="full", help="SQLite synchronous mode")
    parser.add_argument(
        "--event-loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="the relay's event loop (auto: uvloop when installed)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


@dataclass
class BenchResult:
    """One system's figures."""

    system: str
    messages: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float = float("nan")
    """Server process CPU time (user+system) per message, in microseconds: robust to a busy machine."""
    client_cpu_us: float = float("nan")
    """Load generator CPU time per message (all clients run in this process)."""


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summarise(system: str, latencies: list[float], seconds: float, cpu: dict[str, float]) -> BenchResult:
    n = max(1, len(latencies))
    return BenchResult(
        system,
        len(latencies),
        seconds,
        len(latencies) / seconds,
        _percentile(latencies, 0.5) * 1000,
        _percentile(latencies, 0.99) * 1000,
        cpu.get("server", float("nan")) / n * 1e6,
        cpu.get("client", float("nan")) / n * 1e6,
    )


def _proc_cpu(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc), NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


async def _measure_cpu(pid: int, measure_from: float, measure_to: float, out: dict[str, float]) -> None:
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    server0, client0 = _proc_cpu(pid), time.process_time()
    await asyncio.sleep(max(0.0, measure_to - time.perf_counter()))
    out["server"] = _proc_cpu(pid) - server0
    out["client"] = time.process_time() - client0


# --- servers ----------------------------------------------------------------------------------


def _spawn(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"server did not start: {err}")
    return proc, json.loads(line)["listening"]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def _echo_server() -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, compression=None, max_size=2**20) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"listening": f"ws://127.0.0.1:{port}"}), flush=True)
        await server.serve_forever()


# --- load -------------------------------------------------------------------------------------


async def _load_echo(
    url: str, clients: int, window: int, size: int, warmup: float, seconds: float, pid: int
) -> BenchResult:
    from websockets.asyncio.client import ClientConnection, connect

    conns = [await connect(url, compression=None, max_size=2**20) for _ in range(clients)]
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from, measure_to = start + warmup, start + warmup + seconds
    pad = os.urandom(max(0, size - 8))

    async def run(ws: ClientConnection) -> None:
        # Closed loop with `window` frames in flight: each echo carries its send time and triggers the next.
        for _ in range(window):
            await ws.send(struct.pack("d", time.perf_counter()) + pad)
        outstanding = window
        while outstanding:
            reply = await ws.recv()
            outstanding -= 1
            t1 = time.perf_counter()
            assert isinstance(reply, bytes)
            (t0,) = struct.unpack("d", reply[:8])
            if measure_from <= t1 < measure_to:
                latencies.append(t1 - t0)
            if t1 < measure_to:
                await ws.send(struct.pack("d", time.perf_counter()) + pad)
                outstanding += 1

    cpu: dict[str, float] = {}
    await asyncio.gather(_measure_cpu(pid, measure_from, measure_to, cpu), *(run(ws) for ws in conns))
    for ws in conns:
        await ws.close()
    return _summarise("echo (bare websockets)", latencies, seconds, cpu)


async def _load_relay(
    url: str, clients: int, window: int, size: int, warmup: float, seconds: float, system: str, pid: int
) -> BenchResult:
    import nacl.signing

    from relay.client import Delivery, RelayConnection

    latencies: list[float] = []
    start = time.perf_counter()
    measure_from, measure_to = start + warmup, start + warmup + seconds
    sent_at: dict[bytes, float] = {}
    done_waiters: dict[bytes, asyncio.Future[None]] = {}
    conns: list[RelayConnection] = []
    loop = asyncio.get_running_loop()

    def make_handler(index: int) -> object:
        def on_message(msg: Delivery) -> None:
            now = time.perf_counter()
            tag = msg.env[:16]
            t0 = sent_at.pop(tag, None)
            if t0 is not None and measure_from <= now < measure_to:
                latencies.append(now - t0)
            waiter = done_waiters.pop(tag, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            conns[index].ack_soon([msg.mid])  # piggybacked on this client's next send

        return on_message

    for i in range(clients):
        conns.append(
            await RelayConnection.connect(url, nacl.signing.SigningKey.generate(), on_message=make_handler(i))
        )
    pad = os.urandom(max(0, size - 16))

    async def lane(i: int) -> None:
        conn, peer = conns[i], conns[(i + 1) % clients].account
        while True:
            t0 = time.perf_counter()
            if t0 >= measure_to:
                return
            tag = os.urandom(16)
            sent_at[tag] = t0
            waiter = loop.create_future()
            done_waiters[tag] = waiter
            await conn.send(peer, tag + pad)
            await asyncio.wait_for(waiter, 30)

    cpu: dict[str, float] = {}
    await asyncio.gather(
        _measure_cpu(pid, measure_from, measure_to, cpu),
        *(lane(i) for i in range(clients) for _ in range(window)),
    )
    await asyncio.sleep(0.2)
    for conn in conns:
        await conn.close()
    return _summarise(system, latencies, seconds, cpu)


def _loop_name(event_loop: str) -> str:
    """The event loop actually used: uvloop when asked or (auto) installed, else asyncio."""
    if event_loop == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if event_loop == "uvloop":
            raise SystemExit("--event-loop uvloop: uvloop is not installed") from None
        return "asyncio"
    return "uvloop"


def _run(loop_name: str, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the named event loop (the same for the servers and the load generator)."""
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def run_bench(
    *,
    clients: int = 100,
    seconds: float = 5.0,
    warmup: float = 1.0,
    window: int = 1,
    size: int = 256,
    redis: str | None = None,
    sync: str = "full",
    event_loop: str = "auto",
    on_system: Callable[[str], None] = lambda name: None,
) -> list[BenchResult]:
    """Measure the echo ceiling and the relay (SQLite, and Redis if given) in one run.

    ``on_system(name)`` is called as each system's measurement starts (for progress display).
    """
    results = []
    on_system("echo server")
    loop_name = _loop_name(event_loop)
    echo, echo_url = _spawn(["-m", "research.bench_relay", "echo-server", loop_name])
    try:
        results.append(
            _run(loop_name, _load_echo(echo_url, clients, window, size, warmup, seconds, echo.pid))
        )
    finally:
        _stop(echo)
    with tempfile.TemporaryDirectory(prefix="pocketscan-bench-relay-") as tmp:
        base = [
            "-c",
            "from client.cli.main import main; raise SystemExit(main())",
            "relay",
            "--port",
            "0",
            "--quiet",
            "--account-rate",
            "0",
            "--address-rate",
            "0",
            "--connections-per-address",
            "0",  # every load-generating client shares one loopback address
            "--event-loop",
            loop_name,
        ]
        on_system("relay (SQLite)")
        relay, relay_url = _spawn([*base, "--db", os.path.join(tmp, "relay.sqlite"), "--sync", sync])
        try:
            results.append(
                _run(
                    loop_name,
                    _load_relay(
                        relay_url,
                        clients,
                        window,
                        size,
                        warmup,
                        seconds,
                        f"relay (SQLite WAL, synchronous={sync})",
                        relay.pid,
                    ),
                )
            )
        finally:
            _stop(relay)
        if redis:
            on_system("relay (Redis)")
            prefix = f"bench:{os.urandom(4).hex()}:"
            relay, relay_url = _spawn([*base, "--redis", redis, "--redis-prefix", prefix])
            try:
                results.append(
                    _run(
                        loop_name,
                        _load_relay(
                            relay_url, clients, window, size, warmup, seconds, "relay (Redis)", relay.pid
                        ),
                    )
                )
            finally:
                _stop(relay)
    return results


def _handle(args: argparse.Namespace) -> int:
    from scanner.progress import progress_bar

    systems = 3 if args.redis else 2
    with progress_bar("bench relay", systems, quiet=args.json) as advance:
        done = [0]

        def on_system(name: str) -> None:
            advance(completed=done[0], description=f"measuring {name}")
            done[0] += 1

        results = run_bench(
            clients=args.clients,
            seconds=args.seconds,
            warmup=args.warmup,
            window=args.window,
            size=args.size,
            redis=args.redis,
            sync=args.sync,
            event_loop=args.event_loop,
            on_system=on_system,
        )
    ceiling = results[0].msgs_per_s
    if args.json:
        print(
            json.dumps(
                {
                    "clients": args.clients,
                    "window": args.window,
                    "size": args.size,
                    "results": [asdict(r) | {"ratio_to_echo": r.msgs_per_s / ceiling} for r in results],
                }
            )
        )
        return 0
    print(
        f"{args.clients} clients on loopback, {args.window} in flight each, {args.size}-byte messages, "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up, "
        f"event loop {_loop_name(args.event_loop)}"
    )
    print(
        f"{'system':40} {'msgs/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'x echo':>6}"
        f" {'server us/msg':>13} {'client us/msg':>13}"
    )
    for r in results:
        print(
            f"{r.system:40} {r.msgs_per_s:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {r.msgs_per_s / ceiling:6.2f}"
            f" {r.server_cpu_us:13.0f} {r.client_cpu_us:13.0f}"
        )
    print("server/client us/msg: CPU time per delivered message (robust to other load on the machine)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["echo-server"]:
        _run(sys.argv[2] if len(sys.argv) > 2 else "asyncio", _echo_server())
    else:
        print("usage: pocketscan bench relay [--help]", file=sys.stderr)
        sys.exit(2)
