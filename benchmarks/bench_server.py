"""Throughput of `dalle serve` with 8 concurrent clients against one at a time.

    python benchmarks/bench_server.py [--model shapes] [--requests 32] [--clients 8]

A live server (uvicorn, in this process, 2 threads of torch) serves --model; first --requests
requests of one image each are sent one after another, then the same number by --clients
concurrent clients. Waiting requests for the same pipeline and settings are drawn as one batch
by the server's worker, which is where the gain comes from. Prints images/s both ways, their
ratio (the issue's bar: at least 2x) and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import httpx  # noqa: E402
import torch  # noqa: E402
import uvicorn  # noqa: E402
from bench_generate import cpu_name  # noqa: E402

from dalle.server.app import create_app  # noqa: E402
from dalle.server.models import ModelRegistry, load_model  # noqa: E402


def serve(model: str) -> tuple[uvicorn.Server, str]:
    registry = ModelRegistry()
    registry.add(load_model(model))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(registry, max_queue=64), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/v1/images/generations"


def run(url: str, model: str, requests: int, clients: int) -> float:
    """Seconds to get ``requests`` one-image answers with ``clients`` clients at once."""
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                r = http.post(url, json={"model": model, "prompt": f"a red circle {i % 4}",
                                         "seed": i})  # fmt: skip
                r.raise_for_status()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(2)
    server, url = serve(args.model)
    run(url, args.model, 2, 1)  # warm-up
    one = run(url, args.model, args.requests, 1)
    many = run(url, args.model, args.requests, args.clients)
    server.should_exit = True
    print(f"CPU: {cpu_name()}, 2 threads; {args.requests} requests of 1 image, {args.model}\n")
    print("| clients | seconds | images / s |\n|---|---|---|")
    print(f"| 1 (one at a time) | {one:.1f} | {args.requests / one:.2f} |")
    print(f"| {args.clients} concurrent | {many:.1f} | {args.requests / many:.2f} |")
    print(f"\nratio: {one / many:.2f}x")
    print(json.dumps({"cpu": cpu_name(), "model": args.model, "requests": args.requests,
                      "one_s": one, "concurrent_s": many, "clients": args.clients,
                      "ratio": one / many}))  # fmt: skip


if __name__ == "__main__":
    main()
