"""Issue 12 goal 1, the HTTP layer alone: the hall's own server against uvicorn, CPU per request.

The same toy ASGI app (reads the body, answers a 180-byte JSON with Content-Length, as a
command route does) is served in a child process on uvloop, either by
:class:`hallctl.http.wire.WireServer` (the daemon's server) or by uvicorn's httptools
protocol configured as the daemon had it (lifespan off, no access log, its default proxy
headers). Clients on keep-alive connections POST a small JSON body, one request in flight
per connection, for ``--seconds``; the server process's CPU time (user + system, from
``/proc``) is divided by the requests answered. The two servers alternate in ``--rounds``
rounds of the same run, and the ratio of their medians is recorded: the machine is shared
and absolute CPU times move with it, the ratio much less.

Run: .venv/bin/python bench/http_wire.py [--seconds 3] [--rounds 3] [--clients 16] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from hallctl.http.limits import Receive, Scope, Send  # noqa: E402

BENCH = "http_wire"
ANSWER = (
    b'{"id":"20261123-A001","number":"A001","category":"A","state":"waiting","waiting_ahead":0,'
    + b'"x":"'
    + (b"y" * 80)
    + b'"}'
)
BODY = b'{"category": "A"}'
REQUEST = (
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: hall\r\nContent-Type: application/json\r\n"
    b"Authorization: Bearer hct_0123456789abcdef0123456789abcdef0123456789a\r\n"
    b"Content-Length: %d\r\n\r\n%b" % (len(BODY), BODY)
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


async def serve(kind: str) -> None:
    """Serve ``app`` and print the port (one line on stdout) once it serves."""
    from hallctl.http.server import bind_listener

    sock = bind_listener("127.0.0.1", 0)
    stop = asyncio.Event()
    if kind == "wire":
        from hallctl.http.wire import WireServer

        server = WireServer(app, header_timeout_s=10, keep_alive_s=5, max_connections=800)
        await server.start(sock)
        print(sock.getsockname()[1], flush=True)
        await stop.wait()
    else:
        import uvicorn

        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, http="httptools")
        userver = uvicorn.Server(config)
        task = asyncio.create_task(userver.serve(sockets=[sock]))
        while not userver.started:  # noqa: ASYNC110 (uvicorn says it serves by this flag only)
            await asyncio.sleep(0.01)
        print(sock.getsockname()[1], flush=True)
        await task


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def client(port: int, until: float) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.monotonic() < until:
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 201"), head[:40]
            await reader.readexactly(len(ANSWER))
            n += 1
    finally:
        writer.close()
    return n


def one_round(kind: str, clients: int, seconds: float) -> float:
    """CPU ms per request of a fresh server process of ``kind``."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the child prints its port once it serves (or exits: "")
        if not line.strip():
            raise RuntimeError(f"{kind} server did not start")
        port = int(line)

        async def load(seconds: float) -> int:
            until = time.monotonic() + seconds
            return sum(await asyncio.gather(*(client(port, until) for _ in range(clients))))

        asyncio.run(load(0.5))  # warm-up: imports, first allocations
        before = cpu_s(proc.pid)
        n = asyncio.run(load(seconds))
        used = cpu_s(proc.pid) - before
        return used / n * 1000
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        import uvloop

        uvloop.run(serve(sys.argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    results: dict[str, list[float]] = {"wire": [], "uvicorn": []}
    for _ in range(args.rounds):
        for kind in ("wire", "uvicorn"):
            results[kind].append(one_round(kind, args.clients, args.seconds))
    wire, uvi = statistics.median(results["wire"]), statistics.median(results["uvicorn"])
    print(f"server CPU per keep-alive request, {args.clients} clients, {args.rounds} rounds alternated:")
    for kind, xs in results.items():
        print(f"  {kind:8} median {statistics.median(xs):.4f} ms   rounds {', '.join(f'{x:.4f}' for x in xs)}")
    print(
        f"  ratio wire / uvicorn {wire / uvi:.2f}   (loadavg {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )
    if not args.no_record:
        detail = f"{args.clients} clients, {args.rounds} rounds; wire {wire:.4f} ms, uvicorn {uvi:.4f} ms per request"
        figures.record(
            figures.Figure(
                BENCH, "server CPU per request, wire / uvicorn", round(wire / uvi, 3), "x", 1.0, "<=", "1", detail
            ),
            figures.Figure(BENCH, "server CPU per request (wire)", round(wire, 4), "ms", None, "<=", "1", detail),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
