"""An HTTP server speaking the OpenAI Images API (``/v1/images/generations``, ``/edits``,
``/variations``, ``/v1/models``) over the project's pipelines, on FastAPI.

Every error is in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``: 400 for
bad input, 401 without the API key, 404 for unknown paths and expired image URLs, 413 for a body
over the limit, 429 (with ``retry-after``) when the queue is full. Drawing runs on one worker
thread off the event loop (``dalle.server.worker``), which merges waiting requests for the same
pipeline and settings into one batch.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from dalle import __version__
from dalle.data.images import BadImageError, load_image, to_rgb
from dalle.pipelines.seeds import image_seed
from dalle.server.models import ModelRegistry, ServedModel
from dalle.server.worker import Job, QueueFull, Worker
from dalle.text.prompts import check_prompts
from dalle.utils.images import png_bytes

MAX_IMAGES = 10  # n per request, as the API allows
MAX_PARTIAL_IMAGES = 3
URL_TTL_SECONDS = 3600  # image URLs expire after an hour
URL_CAPACITY = 512  # images kept for URLs at most (the oldest go first)
RETRY_AFTER_SECONDS = 2
MAX_UPLOAD_PIXELS = 4096 * 4096  # uploads are refused past this, from their header

logger = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type, self.headers = type_, headers


def error_response(
    status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
    code: str | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:  # fmt: skip
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class UrlStore:
    """PNG bytes by id for ``url`` results: bounded, each kept ``ttl`` seconds."""

    def __init__(self, capacity: int = URL_CAPACITY, ttl: float = URL_TTL_SECONDS) -> None:
        self.capacity, self.ttl = capacity, ttl
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._items[key] = (data, time.monotonic() + self.ttl)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[1] < time.monotonic():
                self._items.pop(key, None)
                return None
            return found[0]


@dataclass(frozen=True)
class ImageRequest:
    model: ServedModel
    prompt: str
    n: int
    response_format: str
    stream: bool
    partial_images: int
    seed: int
    guidance: float | None
    steps: int | None
    candidates: int | None


# -- reading requests ---------------------------------------------------------------------------
def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise APIError(400, f"'{name}' must be a whole number from {low} to {high}", name)
    try:
        number = int(value)
    except ValueError:
        raise APIError(400, f"'{name}' must be a whole number, got {value!r}", name) from None
    if not low <= number <= high:
        raise APIError(400, f"'{name}' must be from {low} to {high}, got {number}", name)
    return number


def _float(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool):
        raise APIError(400, f"'{name}' must be a number", name)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise APIError(400, f"'{name}' must be a number, got {value!r}", name) from None
    if not (math.isfinite(number) and low <= number <= high):
        raise APIError(400, f"'{name}' must be a finite number from {low} to {high}", name)
    return number


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise APIError(400, f"'{name}' must be true or false", name)


def parse_request(fields: dict[str, Any], registry: ModelRegistry, needs_prompt: bool = True):
    """The checked request, or an APIError naming the field."""
    model_name = fields.get("model")
    if model_name is not None and not isinstance(model_name, str):
        raise APIError(400, "'model' must be a string", "model")
    try:
        model = registry.get(model_name)
    except KeyError:
        raise APIError(
            400, f"unknown model {model_name!r}; this server has {', '.join(registry.names())}",
            "model", "model_not_found",
        ) from None  # fmt: skip
    prompt = ""
    if needs_prompt:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str):
            raise APIError(400, "'prompt' is required: a string", "prompt")
        try:
            prompt = check_prompts([prompt])[0]
        except ValueError as e:
            raise APIError(400, str(e).replace("prompt 0", "'prompt'"), "prompt") from None
    size = fields.get("size")
    if size not in (None, "auto", model.size_text):
        raise APIError(
            400, f"size {size!r} is not supported by {model.name}: it draws {model.size_text}",
            "size",
        )  # fmt: skip
    response_format = fields.get("response_format")
    response_format = "b64_json" if response_format is None else response_format
    if response_format not in ("b64_json", "url"):
        raise APIError(400, "'response_format' must be 'b64_json' or 'url'", "response_format")
    if fields.get("output_format") not in (None, "png"):
        raise APIError(
            400, "'output_format' must be 'png' (the only format served)", "output_format"
        )
    n = _int(fields.get("n", 1), "n", 1, MAX_IMAGES)
    stream = _bool(fields.get("stream", False), "stream")
    partial = _int(fields.get("partial_images", 0), "partial_images", 0, MAX_PARTIAL_IMAGES)
    seed = _int(fields.get("seed", 0), "seed", 0, 2**63 - 1)
    guidance = fields.get("guidance")
    guidance = None if guidance is None else _float(guidance, "guidance", 0.0, 100.0)
    steps = fields.get("steps")
    steps = None if steps is None else _int(steps, "steps", 1, 1000)
    if steps is not None and model.kind != "UnclipPipeline":
        raise APIError(400, "'steps' sets the decoder's steps of unCLIP pipelines", "steps")
    if steps is not None and model.pipeline.decoder is not None:  # type: ignore[attr-defined]
        from dalle.pipelines.unclip_pipeline import check_steps

        try:  # the pipeline's own check: at most the timesteps the decoder was trained with
            check_steps("decoder", steps, model.pipeline.decoder.config.num_timesteps)  # type: ignore[attr-defined]
        except ValueError as e:
            raise APIError(400, f"'steps': {e}", "steps") from None
    candidates = fields.get("candidates")
    candidates = None if candidates is None else _int(candidates, "candidates", n, 64)
    if candidates is not None and candidates > n and getattr(model.pipeline, "clip", None) is None:
        raise APIError(400, f"{model.name} has no CLIP to rank candidates", "candidates")
    if partial and candidates is not None and candidates > n:
        raise APIError(400, "'partial_images' with reranking: which candidates are kept is known "
                       "only at the end, so there is nothing to preview", "partial_images")  # fmt: skip
    for name in ("quality", "style", "user", "background", "moderation"):
        if fields.get(name) is not None and not isinstance(fields.get(name), str):
            raise APIError(400, f"'{name}' must be a string", name)
    return ImageRequest(model, prompt, n, response_format, stream, partial, seed, guidance,
                        steps, candidates)  # fmt: skip


def _settings(req: ImageRequest) -> dict[str, Any]:
    """The keyword arguments of the pipeline's drawing for this request."""
    pipe = req.model.pipeline
    if req.model.kind == "DallePipeline":
        return {"settings": pipe.settings(guidance=req.guidance)}  # type: ignore[attr-defined]
    decoder = pipe.decoder_settings(guidance=req.guidance, steps=req.steps)  # type: ignore[attr-defined]
    return {"decoder": decoder}


def _settings_text(settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stage, value in settings.items():
        for k, v in asdict(value).items():
            out[k if stage == "settings" else f"{stage}_{k}"] = v
    return out


def _png_text(req: ImageRequest, **extra) -> dict[str, Any]:
    """What a served PNG says about itself in its text chunks (as the CLI's do)."""
    text = {"prompt": req.prompt or None, "seed": req.seed, "model": req.model.name}
    return (
        {k: v for k, v in text.items() if v is not None}
        | extra
        | {"software": f"dalle {__version__}"}
    )


# -- the OpenAPI description of the bodies (read by clients' tools and by the schema fuzzer) --
_COMMON = {
    "model": {"type": "string"},
    "n": {"type": "integer", "minimum": 1, "maximum": MAX_IMAGES},
    "size": {"type": "string"},
    "response_format": {"type": "string", "enum": ["b64_json", "url"]},
    "seed": {"type": "integer", "minimum": 0},
}
# how the images are drawn (guidance: of the decoder's fresh steps for variations)
_DRAWING = {
    "guidance": {"type": "number", "minimum": 0},
    "steps": {"type": "integer", "minimum": 1},
}
_GENERATION_BODY = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string"},
        **_COMMON,
        "output_format": {"type": "string", "enum": ["png"]},
        "stream": {"type": "boolean"},
        "partial_images": {"type": "integer", "minimum": 0, "maximum": MAX_PARTIAL_IMAGES},
        "quality": {"type": "string"},
        "style": {"type": "string"},
        "user": {"type": "string"},
        **_DRAWING,
        "candidates": {"type": "integer", "minimum": 1},
    },
}
_FILE = {"type": "string", "format": "binary"}


def _json_body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _form_body(properties: dict, required: list[str]) -> dict:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"required": True,
                            "content": {"multipart/form-data": {"schema": schema}}}}  # fmt: skip


class _Guard:
    """Plain ASGI middleware (it does not hide a client's disconnect from the app, as Starlette's
    BaseHTTPMiddleware does): the API key on /v1 (image URLs excepted: their ids are the secret),
    and the body size, counted as it arrives (chunked bodies included): 413 past the limit."""

    def __init__(self, app, api_key: str | None, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self.key_digest = (
            None if not api_key else hashlib.sha256(f"Bearer {api_key}".encode()).digest()
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path: str = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.key_digest and path.startswith("/v1/") and not path.startswith("/v1/images/files/"):
            given = hashlib.sha256(headers.get("authorization", "").encode()).digest()
            if not hmac.compare_digest(given, self.key_digest):
                response = error_response(
                    401, "a valid API key is required: Authorization: Bearer KEY",
                    "authentication_error", code="invalid_api_key",
                )  # fmt: skip
                return await response(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            status = 400 if not length.isdigit() else 413
            message = ("content-length must be a number" if status == 400
                       else f"the request body is over {self.max_body_bytes} bytes")  # fmt: skip
            return await error_response(status, message, code="too_large")(scope, receive, send)
        seen = 0
        limit = self.max_body_bytes

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        started = False

        async def tracked_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                response = error_response(413, f"the request body is over {limit} bytes",
                                          code="too_large")  # fmt: skip
                await response(scope, receive, send)


class _TooLarge(Exception):
    pass


# -- the app ------------------------------------------------------------------------------------
def create_app(
    registry: ModelRegistry,
    api_key: str | None = None,
    max_queue: int = 16,
    max_body_bytes: int = 20 * 1024 * 1024,
    worker: Worker | None = None,
    urls: UrlStore | None = None,
) -> FastAPI:
    app = FastAPI(title="dalle", version=__version__, docs_url=None, redoc_url=None)
    app.state.registry = registry
    app.state.worker = worker or Worker(max_queue=max_queue)
    app.state.urls = urls or UrlStore()
    work: Worker = app.state.worker
    store: UrlStore = app.state.urls

    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError) -> JSONResponse:
        return error_response(e.status, e.message, e.type, e.param, e.code, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
        return error_response(400, f"{where or 'request'}: {first.get('msg', 'invalid')}",
                              param=where)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        return error_response(e.status_code, str(e.detail), kind)

    app.add_middleware(_Guard, api_key=api_key, max_body_bytes=max_body_bytes)

    @app.exception_handler(Exception)
    async def _failure(request: Request, e: Exception) -> JSONResponse:
        logger.exception("failed: %s %s", request.method, request.url.path)
        return error_response(500, "the server failed to handle the request", "server_error")

    from importlib.resources import files

    page_html = files("dalle.server").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        """The web page: plain HTML, CSS and JavaScript, nothing fetched from elsewhere."""
        return Response(page_html, media_type="text/html; charset=utf-8")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        alive = work.alive
        return {"status": "ok" if alive else "worker stopped", "models": registry.names(),
                "queued": work.waiting}  # fmt: skip

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        # "size" is ours (the pipeline's native size, what edits need; the page reads it)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "dalle",
                 "size": registry.get(name).size_text} for name in registry.names()]  # fmt: skip
        return {"object": "list", "data": data}

    @app.get("/v1/images/files/{key}.png")
    async def image_file(key: str) -> Response:
        data = store.get(key)
        if data is None:
            raise APIError(404, "no such image: image URLs expire after an hour",
                           type_="not_found_error")  # fmt: skip
        return Response(data, media_type="image/png")

    @app.post("/v1/images/generations", openapi_extra=_json_body(_GENERATION_BODY))
    async def generations(request: Request):
        if not request.headers.get("content-type", "").startswith("application/json"):
            # also keeps other web sites' pages from making a local server draw ("simple"
            # cross-origin requests cannot send this type)
            raise APIError(400, "the body must be JSON, sent as application/json")
        try:
            fields = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError):
            raise APIError(400, "the body must be a JSON object") from None
        if not isinstance(fields, dict):
            raise APIError(400, "the body must be a JSON object")
        req = parse_request(fields, registry)
        settings = _settings(req)
        job = _generation_job(req, settings)
        text = _png_text(req, **_settings_text(settings))
        if req.stream:
            return _stream(request, req, job, text, "image_generation")
        images = await _run(request, job)
        return await _respond(request, req, images, text)

    @app.post("/v1/images/edits", openapi_extra=_form_body(
        {"image": _FILE, "mask": _FILE, "prompt": {"type": "string"}, **_COMMON, **_DRAWING},
        ["image", "prompt"],
    ))  # fmt: skip
    async def edits(request: Request):
        form = await _form(request)
        req = parse_request(form, registry)
        if req.candidates is not None and req.candidates > req.n:
            raise APIError(400, "'candidates' ranks generations and variations; an edit draws "
                           "each image once", "candidates")  # fmt: skip
        image = await _upload(form, ("image", "image[]"), "image")
        region = await _mask_region(form, image, req.model)
        text = _png_text(req, edit="inpainting")
        job = Job(key=None, images=req.n)  # previews, when streamed, set job.on_partial first
        job.run = lambda: _inpaint(req, image, region, job.on_partial)
        if req.stream:
            return _stream(request, req, job, text, "image_edit")
        return await _respond(request, req, await _run(request, job), text)

    @app.post("/v1/images/variations", openapi_extra=_form_body(
        {"image": _FILE, **_COMMON, **_DRAWING, "candidates": {"type": "integer", "minimum": 1}},
        ["image"],
    ))  # fmt: skip
    async def variations(request: Request):
        form = await _form(request)
        req = parse_request(form, registry, needs_prompt=False)
        if req.model.kind != "UnclipPipeline":
            raise APIError(400, f"{req.model.name} makes no variations: use an unCLIP pipeline",
                           "model")  # fmt: skip
        if req.stream or req.partial_images:
            name = "stream" if req.stream else "partial_images"
            raise APIError(400, f"'{name}': variations are not streamed (as in the OpenAI API)",
                           name)  # fmt: skip
        image = await _upload(form, ("image",), "image")
        try:  # square, as the OpenAI API asks; square ones of any size are resized
            from dalle.pipelines.editing import check_square

            check_square(image, "the image")
        except ValueError as e:
            raise APIError(400, str(e), "image") from None
        from dalle.pipelines.editing import variation_candidates, variation_settings

        settings = variation_settings(steps=req.steps, fresh_guidance=req.guidance)
        text = _png_text(req, edit="variation", steps=settings.steps,
                         fresh_guidance=settings.fresh_guidance,
                         candidates=variation_candidates(req.n, req.candidates))  # fmt: skip
        job = Job(key=None, images=req.n, run=lambda: _vary(req, image, settings))
        return await _respond(request, req, await _run(request, job), text)

    # -- helpers that close over the app's state -------------------------------------------
    def _submit(job: Job):
        try:
            return work.submit(job)
        except RuntimeError:
            raise APIError(503, "the server is shutting down", type_="server_error") from None
        except QueueFull:
            raise APIError(429, "the server is busy: retry shortly", type_="rate_limit_error",
                           code="queue_full",
                           headers={"retry-after": str(RETRY_AFTER_SECONDS)}) from None  # fmt: skip

    async def _run(request: Request, job: Job) -> list[Image.Image]:
        waiting = asyncio.wrap_future(_submit(job))
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=0.5)
            if done:
                break
            if await request.is_disconnected():  # the client left: its place is freed
                job.cancelled.set()
                raise APIError(499, "the client closed the request")
        if waiting.cancelled():  # the worker stopped before taking the job
            raise APIError(503, "the server is shutting down", type_="server_error")
        return waiting.result()  # the inputs were checked: a failure here is the server's

    async def _respond(request: Request, req: ImageRequest, images, text) -> dict[str, Any]:
        pngs = await asyncio.to_thread(
            lambda: [png_bytes(image, {**text, "image_index": j}) for j, image in enumerate(images)]
        )
        data = []
        pipe = req.model.pipeline
        # what the model read: an over-long prompt is cut to the tokens it reads
        read = pipe.tokenizer.read_part(req.prompt, pipe.text_seq_len) if req.prompt else None
        for png in pngs:
            if req.response_format == "url":
                key = store.put(png)
                item = {"url": f"{str(request.base_url).rstrip('/')}/v1/images/files/{key}.png"}
            else:
                item = {"b64_json": base64.b64encode(png).decode()}
            if read is not None:
                item["revised_prompt"] = read
            data.append(item)
        return {"created": int(time.time()), "data": data, "size": req.model.size_text,
                "output_format": "png"}  # fmt: skip

    def _stream(request: Request, req: ImageRequest, job: Job, text, prefix: str):
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def on_partial(index: int, images: list[Image.Image]) -> None:
            loop.call_soon_threadsafe(events.put_nowait, ("partial", index, images))

        if req.partial_images:
            job.on_partial = on_partial

        async def event(kind: str, image: Image.Image, **extra) -> str:
            png = await asyncio.to_thread(png_bytes, image, text)
            body = {
                "type": f"{prefix}.{kind}", "b64_json": base64.b64encode(png).decode(),
                "created_at": int(time.time()), "size": req.model.size_text, "quality": "auto",
                "background": "opaque", "output_format": "png", **extra,
            }  # fmt: skip
            return f"event: {prefix}.{kind}\ndata: {json.dumps(body)}\n\n"

        finished = asyncio.wrap_future(_submit(job))
        finished.add_done_callback(lambda _: events.put_nowait(("done", None, None)))

        async def body():
            try:
                while True:
                    kind, index, images = await events.get()
                    if kind == "partial":
                        for image in images:
                            yield await event("partial_image", image, partial_image_index=index)
                        continue
                    message = "drawing failed"
                    try:
                        final = finished.result()
                    except asyncio.CancelledError:  # the worker stopped before taking the job
                        final, message = None, "the server is shutting down"
                    except Exception:
                        logger.exception("drawing failed")
                        final = None
                    if final is None:  # the error as an event the client raises
                        error = {"type": "error", "error": {"message": message,
                                 "type": "server_error", "param": None, "code": None}}  # fmt: skip
                        yield f"event: error\ndata: {json.dumps(error)}\n\n"
                        return
                    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
                             "input_tokens_details": {"image_tokens": 0, "text_tokens": 0}}  # fmt: skip
                    for image in final:
                        yield await event("completed", image, usage=usage)
                    return
            finally:
                job.cancelled.set()  # a client gone before the end frees its place

        return StreamingResponse(body(), media_type="text/event-stream")

    return app


# -- the work -----------------------------------------------------------------------------------
def _generation_job(req: ImageRequest, settings: dict[str, Any]) -> Job:
    pipe, kind = req.model.pipeline, req.model.kind
    seeds = [image_seed(req.seed, 0, j) for j in range(req.n)]
    if req.candidates and req.candidates > req.n:  # reranked: its own work, never merged

        def rerank() -> list[Image.Image]:
            found = pipe.iter_images([req.prompt], req.n, req.seed, candidates=req.candidates,  # type: ignore[attr-defined]
                                     **settings)  # fmt: skip
            return [image for _, images in found for image in images]

        return Job(key=None, images=req.n, run=rerank)

    def draw(prompts, seeds, on_partial):
        if kind == "DallePipeline":
            previews = _previews(req, on_partial)[0] if on_partial else None
            return pipe.draw_pixels(prompts, seeds, on_token=previews, **settings)  # type: ignore[attr-defined]
        on_step, on_upsampler_step = (
            _previews(req, on_partial, upsampler=True) if on_partial else (None, None)
        )
        return pipe.draw_pixels(prompts, seeds, on_step=on_step,  # type: ignore[attr-defined]
                                on_upsampler_step=on_upsampler_step, **settings)  # fmt: skip

    key = None if req.partial_images else (req.model.name, repr(sorted(settings.items())))
    return Job(key=key, images=req.n, draw=draw, prompts=[req.prompt] * req.n, seeds=seeds)


def _marks(total: int, count: int) -> dict[int, int]:
    """``count`` evenly spaced steps of ``total`` at which previews are sent: {step: index}; fewer
    when there are not that many steps before the last."""
    count = min(count, total - 1)  # marks at least a step apart, before the last (the result)
    return {round(total * (i + 1) / (count + 1)) - 1: i for i in range(count)}


def _previews(
    req: ImageRequest, on_partial, source: Image.Image | None = None, region=None,
    upsampler: bool = False, steps: int | None = None,
):  # fmt: skip
    """Pipeline callbacks that hand ``req.partial_images`` previews to ``on_partial``: for
    DALL·E the rows of tokens drawn so far (decoded; rows to come black), for unCLIP the
    decoder's estimate of the image at that step. For an edit (``source`` and its ``region``,
    True = repainted) the source's pixels stand outside the region, as in the result. A pair:
    the sampler's callback and, for unCLIP with ``upsampler`` (generation), the upsampler's,
    the previews spread over both stages' steps (else None). ``steps``: the decoder's step count
    when it is not the pipeline's for ``req.steps`` (an inpainting's RePaint keeps its own)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from dalle.utils.images import to_pil

    pipe, count, size = req.model.pipeline, req.partial_images, req.model.size
    outside = None
    if source is not None:
        outside = ~region.bool()  # (H, W)
        kept = torch.from_numpy(np.array(to_rgb(source))).permute(2, 0, 1) / 255

    def send(index: int, pixels: torch.Tensor, todo: torch.Tensor | None) -> None:
        """(B, 3, size, size) pixels in [0, 1]; ``todo`` (size, size): not drawn yet (black)."""
        if todo is not None:
            pixels[:, :, todo] = 0
        if outside is not None:
            pixels = torch.where(outside, kept, pixels)
        on_partial(index, to_pil(pixels))

    if req.model.kind == "DallePipeline":
        from dalle.pipelines.editing import touched_cells

        grid = pipe.transformer.config.image_grid  # type: ignore[attr-defined]
        drawn = torch.ones(grid * grid, dtype=torch.bool)  # the tokens sampled, in raster order
        if region is not None:
            drawn = touched_cells(region, grid).flatten()
        order = drawn.nonzero().flatten().tolist()
        marks = {order[j]: i for j, i in _marks(len(order), count).items()}

        def on_token(k: int, tokens: torch.Tensor) -> None:
            if k in marks:  # black: the tokens still to be drawn after token k
                later = drawn & (torch.arange(grid * grid) > k)
                todo = later.view(1, 1, grid, grid).float()
                todo = F.interpolate(todo, size=size, mode="nearest")[0, 0].bool()
                send(marks[k], pipe.decode_pixels(tokens.clone()).float().cpu(), todo)  # type: ignore[attr-defined]

        return on_token, None
    if steps is None:
        steps = pipe.decoder_settings(steps=req.steps).steps  # type: ignore[attr-defined]
    up_steps = 0
    if upsampler and pipe.upsampler is not None:  # type: ignore[attr-defined]
        up_steps = pipe.upsampler_settings().steps  # type: ignore[attr-defined]
    marks = _marks(steps + up_steps, count)

    def on_step(i: int, x0: torch.Tensor) -> None:
        if i in marks:
            pixels = ((x0.float().clamp(-1, 1) + 1) / 2).cpu()
            send(marks[i], F.interpolate(pixels, size=size, mode="nearest"), None)

    return on_step, (lambda i, x0: on_step(steps + i, x0)) if up_steps else None


async def _form(request: Request) -> dict[str, Any]:
    try:
        form = await request.form(max_files=4, max_fields=64)
    except _TooLarge:
        raise
    except Exception as e:  # malformed multipart bodies of every kind
        raise APIError(400, f"the body must be multipart/form-data ({e})") from None
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        out.setdefault(key, value)
    return out


async def _upload(form: dict[str, Any], names: tuple[str, ...], param: str) -> Image.Image:
    upload = next((form[n] for n in names if n in form), None)
    if upload is None or isinstance(upload, str):
        raise APIError(400, f"'{param}' is required: an image file", param)
    data = await upload.read()
    try:  # the size is checked from the header before a pixel is decoded
        return await asyncio.to_thread(load_image, data, MAX_UPLOAD_PIXELS, True)
    except BadImageError as e:
        raise APIError(400, f"'{param}': {e}", param) from None


async def _mask_region(form: dict[str, Any], image: Image.Image, model: ServedModel):
    from dalle.pipelines.editing import read_mask

    if image.size != (model.size, model.size):
        raise APIError(400, f"the image is {image.size[0]}x{image.size[1]}; {model.name} edits "
                            f"{model.size_text} images", "image")  # fmt: skip
    if "mask" in form:
        mask = await _upload(form, ("mask",), "mask")
    elif "A" in image.getbands():
        mask = image  # the image's own transparent pixels mark the region, as the API does
    else:
        raise APIError(400, "'mask' is required (or an image with transparent pixels)", "mask")
    try:
        return read_mask(mask, image.size)
    except ValueError as e:
        raise APIError(400, f"'mask': {e}", "mask") from None


def _inpaint(req: ImageRequest, image: Image.Image, region, on_partial=None) -> list[Image.Image]:
    from dalle.pipelines import editing

    settings, sampling, steps = None, None, None
    if req.model.kind == "UnclipPipeline":
        settings = editing.InpaintSettings(steps=req.steps, guidance=req.guidance)
        steps = settings.stages(req.model.pipeline)[0].steps  # type: ignore[arg-type]
    else:
        sampling = req.model.pipeline.settings(guidance=req.guidance)  # type: ignore[attr-defined]
    previews = _previews(req, on_partial, image, region, steps=steps)[0] if on_partial else None
    return editing.inpaint(req.model.pipeline, to_rgb(image), region, req.prompt,  # type: ignore[arg-type]
                           req.n, req.seed, settings, sampling=sampling,
                           on_progress=previews)  # fmt: skip


def _vary(req: ImageRequest, image: Image.Image, settings) -> list[Image.Image]:
    from dalle.pipelines import editing

    return editing.variations(req.model.pipeline, [to_rgb(image)], req.n, req.seed,  # type: ignore[arg-type]
                              settings, candidates=req.candidates)[0]  # fmt: skip
