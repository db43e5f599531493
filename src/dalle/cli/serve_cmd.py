"""``dalle serve``: the OpenAI Images API over the project's pipelines (``dalle.server``)."""

from __future__ import annotations

import argparse
import logging
import os

from dalle.cli.validate import positive_int

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the pipelines over an OpenAI Images API-compatible HTTP API",
        description=(
            "Serve pipelines at http://HOST:PORT/v1 as the OpenAI Images API does "
            "(POST /v1/images/generations, /v1/images/edits, /v1/images/variations; GET "
            "/v1/models, /health), so the official `openai` client works with "
            "base_url='http://HOST:PORT/v1'. A request's `model` is a pipeline's name (a bundled "
            "name or the folder's name; `dall-e-2` is the unCLIP pipeline); `size` is its native "
            "size. With --api-key (or DALLE_API_KEY) every /v1 request needs "
            "`Authorization: Bearer KEY`. Requests wait in a queue of --max-queue; beyond it the "
            "server answers 429 with retry-after. Binds to 127.0.0.1 unless told otherwise."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--model", action="append", default=None, metavar="NAME_OR_DIR",
        help="a pipeline to serve (repeat for several; default: every bundled pipeline that "
        "draws images)",
    )  # fmt: skip
    p.add_argument(
        "--api-key", default=None,
        help="required bearer key (default: the DALLE_API_KEY environment variable, which, "
        "unlike an option, other users of the machine cannot read from the process list)",
    )  # fmt: skip
    p.add_argument("--max-queue", type=positive_int, default=16, help="waiting requests (16)")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's: the physical cores, or OMP_NUM_THREADS)",
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from dalle.folders import bundled_names
    from dalle.server.app import create_app
    from dalle.server.models import ModelRegistry, load_model

    if args.port > 65535:
        raise ValueError(f"--port must be at most 65535, got {args.port}")
    _check_port_free(args.host, args.port)  # before the models load, and said plainly
    if args.threads:
        torch.set_num_threads(args.threads)
    api_key = args.api_key or os.environ.get("DALLE_API_KEY") or None
    registry = ModelRegistry()
    if args.model:
        for name in args.model:
            registry.add(load_model(name))
    else:
        for name in bundled_names():
            try:
                registry.add(load_model(name))
            except ValueError as e:  # e.g. a bundled unCLIP pipeline without its decoder yet
                logger.warning("not serving %s: %s", name, e)
    if not registry.models:
        raise ValueError("no pipeline to serve: give --model NAME_OR_DIR")
    if not api_key and args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s without an API key: anyone who reaches it can use it "
                       "(set DALLE_API_KEY)", args.host)  # fmt: skip
    app = create_app(registry, api_key=api_key, max_queue=args.max_queue)
    names = ", ".join(registry.names())
    print(
        f"serving {names} at http://{args.host}:{args.port}/v1"
        + (" (API key required)" if api_key else "")
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _check_port_free(host: str, port: int) -> None:
    """A ValueError if ``host:port`` cannot be listened on (in use, or not this machine's)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ValueError(f"--host {host}: not an address of this machine ({e})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as e:
            raise ValueError(
                f"cannot serve at {host}:{port}: {e.strerror} (another server there? --port)"
            ) from None
