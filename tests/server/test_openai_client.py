"""Issue 17: the official `openai` client against a live `dalle.server` on a free local port."""

import base64
import io
import socket
import threading
import time

import httpx
import numpy as np
import openai
import pytest
import uvicorn
from PIL import Image

from dalle.server.app import create_app
from dalle.server.models import ModelRegistry, load_model
from dalle.server.worker import Job, Worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A uvicorn server in a thread, stopped at the end."""

    def __init__(self, app) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.02)
        self.base = f"http://127.0.0.1:{self.port}"

    def client(self, key: str = "none", retries: int = 0) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=retries,
                             timeout=120)  # fmt: skip

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def registry(tiny_unclip):
    reg = ModelRegistry()
    reg.add(load_model("shapes"))
    reg.add(load_model(str(tiny_unclip)))
    return reg


@pytest.fixture(scope="module")
def server(registry):
    live = LiveServer(create_app(registry))
    yield live
    live.stop()


def png(data: str | bytes) -> Image.Image:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    return Image.open(io.BytesIO(raw))


def upload(image: Image.Image) -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ("image.png", buffer.getvalue(), "image/png")


def test_generations_as_base64_and_urls(server, tiny_unclip):
    client = server.client()
    result = client.images.generate(model="shapes", prompt="a red circle", n=2, size="64x64",
                                    extra_body={"seed": 3})  # fmt: skip
    assert len(result.data) == 2 and result.size == "64x64"
    first = png(result.data[0].b64_json)
    assert first.size == (64, 64)
    assert first.text["prompt"] == "a red circle" and first.text["seed"] == "3"
    assert result.data[0].revised_prompt == "a red circle"
    again = client.images.generate(model="shapes", prompt="a red circle", n=1,
                                   extra_body={"seed": 3})  # fmt: skip
    assert np.array_equal(np.asarray(png(again.data[0].b64_json)), np.asarray(first))
    name = tiny_unclip.name
    result = client.images.generate(model=name, prompt="a blue square", n=1,
                                    response_format="url")  # fmt: skip
    fetched = httpx.get(result.data[0].url)
    assert fetched.status_code == 200 and png(fetched.content).size == (16, 16)
    gone = httpx.get(f"{server.base}/v1/images/files/nothing-here.png")
    assert gone.status_code == 404 and "error" in gone.json()
    alias = client.images.generate(model="dall-e-2", prompt="a white cross", n=1)
    assert png(alias.data[0].b64_json).size == (16, 16)


def test_revised_prompt_is_what_the_model_read(server):
    from dalle.pipelines.dalle_pipeline import DallePipeline

    client = server.client()
    long = "a small red circle above " + "a large blue square and " * 12
    tokenizer = DallePipeline.from_pretrained("shapes").tokenizer
    read = tokenizer.decode(tokenizer.encode(long, 24).ids[0])  # the shapes model reads 24
    result = client.images.generate(model="shapes", prompt=long, n=1)
    assert result.data[0].revised_prompt == read and len(read) < len(long) // 2
    # a prompt typed over two lines (the page's text box) is one prompt, its breaks spaces
    result = client.images.generate(model="shapes", prompt="a red\ncircle", n=1)
    assert result.data[0].revised_prompt == "a red circle"


def test_streaming_sends_partial_images_then_the_images(server):
    client = server.client()
    events = list(client.images.generate(model="shapes", prompt="a green cross", n=1,
                                         stream=True, partial_images=2))  # fmt: skip
    kinds = [e.type for e in events]
    assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    assert png(events[-1].b64_json).size == (64, 64)
    rows = np.asarray(png(events[0].b64_json))
    assert rows[-4:].max() == 0  # the rows still to come are black


def test_unclip_previews_cover_the_upsampler_too(server, tiny_unclip):
    """6 decoder steps (8 x 8) then 3 upsampler steps (16 x 16): of 3 previews spread over the
    9 steps, the first two are the decoder's estimate (scaled up, so constant in 2 x 2 blocks)
    and the last the upsampler's (at its own size)."""
    client = server.client()
    events = list(client.images.generate(model=tiny_unclip.name, prompt="a red circle", n=1,
                                         stream=True, partial_images=3))  # fmt: skip
    assert [e.type for e in events] == ["image_generation.partial_image"] * 3 + [
        "image_generation.completed"
    ]
    assert [e.partial_image_index for e in events[:3]] == [0, 1, 2]

    def blocky(event) -> bool:
        a = np.asarray(png(event.b64_json).convert("RGB")).astype(int)
        assert a.shape == (16, 16, 3)
        return bool((a[0::2, 0::2] == a[1::2, 1::2]).all() and (a[0::2] == a[1::2]).all())

    assert [blocky(e) for e in events[:3]] == [True, True, False]


def test_edits_and_variations(server, tiny_unclip):
    client = server.client()
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    mask = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    for x in range(3, 9):
        mask.putpixel((x, 4), (0, 0, 0, 0))
    result = client.images.edit(model=tiny_unclip.name, image=upload(source), mask=upload(mask),
                                prompt="a red circle", n=2)  # fmt: skip
    keep = np.asarray(mask)[:, :, 3] != 0
    for item in result.data:
        drawn = np.asarray(png(item.b64_json).convert("RGB"))
        assert np.array_equal(drawn[keep], np.asarray(source)[keep])
    varied = client.images.create_variation(model=tiny_unclip.name, image=upload(source), n=3)
    assert len(varied.data) == 3
    events = list(client.images.edit(model=tiny_unclip.name, image=upload(source),
                                     mask=upload(mask), prompt="a red circle", stream=True))  # fmt: skip
    assert [e.type for e in events] == ["image_edit.completed"]
    # streamed edits with previews: the decoder's estimate inside the mask, the source outside
    events = list(client.images.edit(model=tiny_unclip.name, image=upload(source),
                                     mask=upload(mask), prompt="a red circle", stream=True,
                                     partial_images=2))  # fmt: skip
    assert [e.type for e in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    for event in events:
        drawn = np.asarray(png(event.b64_json).convert("RGB"))
        assert np.array_equal(drawn[keep], np.asarray(source)[keep])
    shapes_source = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    big_mask = Image.new("L", (64, 64), 0)
    big_mask.paste(255, (10, 10, 30, 30))  # white: repaint
    dalle_edit = client.images.edit(model="shapes", image=upload(shapes_source),
                                    mask=upload(big_mask), prompt="a red circle")  # fmt: skip
    assert png(dalle_edit.data[0].b64_json).size == (64, 64)
    events = list(client.images.edit(model="shapes", image=upload(shapes_source),
                                     mask=upload(big_mask), prompt="a red circle", stream=True,
                                     partial_images=1))  # fmt: skip
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    preview = np.asarray(png(events[0].b64_json).convert("RGB"))
    outside = np.asarray(big_mask) == 0
    assert np.array_equal(preview[outside], np.asarray(shapes_source)[outside])
    assert preview[20:30, 10:30].max() == 0  # inside the mask, rows still to come are black


def test_variations_take_the_drawing_options(server, tiny_unclip):
    """steps, guidance (the decoder's, in the steps a variation draws afresh) and candidates reach
    the variations: the served image is the library's with the same settings, and says so."""
    from dalle.pipelines import editing
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    client = server.client()
    rng = np.random.default_rng(1)
    source = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    pipe = UnclipPipeline.from_pretrained(str(tiny_unclip))
    settings = editing.variation_settings(steps=4, fresh_guidance=2)
    for seed in range(5, 15):  # a seed where reranking keeps another than the first candidate
        mine = editing.variations(pipe, [source], 1, seed, settings, candidates=3)[0][0]
        if mine.info["candidate"] != 0:
            break
    assert mine.info["candidate"] in (1, 2)
    options = {"steps": 4, "guidance": 2, "candidates": 3, "seed": seed}
    served = png(client.images.create_variation(model=tiny_unclip.name, image=upload(source),
                                                n=1, extra_body=options).data[0].b64_json)  # fmt: skip
    assert (served.text["steps"], served.text["candidates"]) == ("4", "3")
    assert float(served.text["fresh_guidance"]) == 2
    assert np.array_equal(np.asarray(served.convert("RGB")), np.asarray(mine))
    unranked = editing.variations(pipe, [source], 1, seed, settings, candidates=1)[0][0]
    assert not np.array_equal(np.asarray(unranked), np.asarray(mine))  # the option mattered
    with pytest.raises(openai.BadRequestError, match="candidates"):
        client.images.edit(model=tiny_unclip.name, image=upload(source),
                           mask=upload(Image.new("L", (16, 16), 255)), prompt="a red circle",
                           n=1, extra_body={"candidates": 2})  # fmt: skip


def test_models_and_health(server, tiny_unclip):
    models = list(server.client().models.list())
    assert [m.id for m in models] == ["shapes", tiny_unclip.name, "dall-e-2"]
    assert [m.size for m in models] == ["64x64", "16x16", "16x16"]  # ours: the native size
    health = httpx.get(f"{server.base}/health").json()
    assert health["status"] == "ok"


def test_bad_requests_are_400_in_openai_s_shape(server, tiny_unclip):
    client = server.client()
    cases = [
        dict(model="shapes", prompt=""),
        dict(model="shapes", prompt="x" * 20000),
        dict(model="shapes", prompt="a red circle", n=11),
        dict(model="nope", prompt="a red circle"),
        dict(model="shapes", prompt="a red circle", size="1024x1024"),
        dict(model="shapes", prompt="a red circle", extra_body={"guidance": -1}),
        dict(model="shapes", prompt="a red circle", extra_body={"steps": 5}),
        dict(model="shapes", prompt="a red circle", response_format="svg"),
        dict(model="shapes", prompt="a red circle", extra_body={"response_format": False}),
        dict(
            model="shapes",
            prompt="a red circle",
            n=1,
            extra_body={"candidates": 4, "partial_images": 1},
        ),  # reranked: nothing to preview
    ]
    for kwargs in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.images.generate(**kwargs)
        assert err.value.status_code == 400 and err.value.body["message"], kwargs
    not_image = ("x.png", b"not a png at all", "image/png")
    with pytest.raises(openai.BadRequestError, match="not an image"):
        client.images.create_variation(model=tiny_unclip.name, image=not_image)
    small = Image.new("L", (8, 8), 255)
    with pytest.raises(openai.BadRequestError, match="mask"):
        client.images.edit(model=tiny_unclip.name, image=upload(Image.new("RGB", (16, 16))),
                           mask=upload(small), prompt="a red circle")  # fmt: skip
    with pytest.raises(openai.BadRequestError, match="variations"):
        client.images.create_variation(model="shapes", image=upload(Image.new("RGB", (64, 64))))
    with pytest.raises(openai.BadRequestError, match="square"):
        client.images.create_variation(model=tiny_unclip.name,
                                       image=upload(Image.new("RGB", (32, 16))))  # fmt: skip
    # more steps than the tiny decoder's 100 timesteps: the request's fault, not the server's
    square = upload(Image.new("RGB", (16, 16)))
    with pytest.raises(openai.BadRequestError, match="at most 100"):
        client.images.create_variation(model=tiny_unclip.name, image=square,
                                       extra_body={"steps": 101})  # fmt: skip
    with pytest.raises(openai.BadRequestError, match="at most 100"):
        client.images.generate(model=tiny_unclip.name, prompt="a red circle",
                               extra_body={"steps": 101})  # fmt: skip
    with pytest.raises(openai.BadRequestError, match="not streamed"):
        client.images.create_variation(model=tiny_unclip.name, image=square,
                                       extra_body={"stream": True})  # fmt: skip
    plain = httpx.post(
        f"{server.base}/v1/images/generations",
        content=b'{"prompt": "x"}',
        headers={"content-type": "text/plain"},
    )  # a cross-site "simple" request
    assert plain.status_code == 400 and "application/json" in plain.json()["error"]["message"]
    raw = httpx.post(f"{server.base}/v1/images/generations", content=b"{not json",
                     headers={"content-type": "application/json"})  # fmt: skip
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param",
                                                                   "code"}  # fmt: skip


def test_api_key_body_limit_and_a_full_queue(registry):
    gate = threading.Event()
    worker = Worker(max_queue=1)
    blocker = Job(key=None, images=1, run=lambda: (gate.wait(30), [])[1])
    worker.submit(blocker)  # the worker is busy with this
    time.sleep(0.2)
    live = LiveServer(create_app(registry, api_key="sesame", worker=worker, max_body_bytes=2000))
    try:
        with pytest.raises(openai.AuthenticationError):
            live.client("wrong").images.generate(model="shapes", prompt="a red circle")
        client = live.client("sesame")
        gate.set()  # let the worker go for one drawing with a URL, fetched without the key
        time.sleep(0.3)
        url = client.images.generate(model="shapes", prompt="a red circle",
                                     response_format="url").data[0].url  # fmt: skip
        assert httpx.get(url).status_code == 200  # its id is the secret, not the key
        gate.clear()
        worker.submit(Job(key=None, images=1, run=lambda: (gate.wait(30), [])[1]))
        time.sleep(0.3)
        filler = threading.Thread(
            target=lambda: client.images.generate(model="shapes", prompt="a red circle"),
            daemon=True,
        )
        filler.start()  # waits in the queue, which is then full
        deadline = time.time() + 10
        while worker.waiting < 1 and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(openai.RateLimitError) as err:
            client.images.generate(model="shapes", prompt="a blue square")
        assert err.value.response.headers["retry-after"] == "2"
        with pytest.raises(openai.APIStatusError) as err:
            client.images.generate(model="shapes", prompt="a red circle " * 300)
        assert err.value.status_code == 413

        def chunks():  # no content-length: counted as it arrives
            yield b'{"model": "shapes", "prompt": "'
            for _ in range(100):
                yield b"a red circle " * 10
            yield b'"}'

        chunked = httpx.post(f"{live.base}/v1/images/generations", content=chunks(),
                             headers={"authorization": "Bearer sesame",
                                      "content-type": "application/json"})  # fmt: skip
        assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large"
    finally:
        gate.set()
        live.stop()
        worker.stop()


def test_a_request_waiting_when_the_server_stops_is_answered_503(registry):
    gate = threading.Event()
    worker = Worker(max_queue=2)
    worker.submit(Job(key=None, images=1, run=lambda: (gate.wait(30), [])[1]))  # busy
    live = LiveServer(create_app(registry, worker=worker))
    answers = []

    def ask() -> None:
        try:
            live.client().images.generate(model="shapes", prompt="a red circle")
        except openai.APIStatusError as e:
            answers.append((e.status_code, e.body["message"]))

    try:
        waiting = threading.Thread(target=ask, daemon=True)
        waiting.start()
        deadline = time.time() + 10
        while worker.waiting < 1 and time.time() < deadline:
            time.sleep(0.05)
        threading.Thread(target=worker.stop, daemon=True).start()  # cancels what waits
        waiting.join(timeout=20)
        assert answers == [(503, "the server is shutting down")]
    finally:
        gate.set()
        live.stop()


def test_url_store_forgets_after_its_time_and_beyond_its_capacity(monkeypatch):
    import types

    from dalle.server import app

    now = [100.0]  # the store's clock, not the process's (the servers' event loops read that)
    monkeypatch.setattr(app, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    store = app.UrlStore(capacity=2, ttl=10)
    a, b = store.put(b"a"), store.put(b"b")
    assert store.get(a) == b"a" and store.get(b) == b"b" and a != b
    c = store.put(b"c")  # a third: the oldest goes
    assert store.get(a) is None and store.get(b) == b"b" and store.get(c) == b"c"
    now[0] += 10.5  # past the time to live
    assert store.get(b) is None and store.get(c) is None


def test_previews_are_spread_over_the_steps_one_at_most_per_step():
    from dalle.server.app import _marks

    assert _marks(10, 4) == {1: 0, 3: 1, 5: 2, 7: 3}
    assert _marks(3, 5) == {0: 0, 1: 1}  # only two steps before the last
    assert _marks(1, 2) == {}


def test_waiting_requests_for_the_same_settings_are_drawn_as_one_batch(registry):
    gate = threading.Event()
    worker = Worker(max_queue=8)
    worker.submit(Job(key=None, images=1, run=lambda: (gate.wait(30), [])[1]))
    live = LiveServer(create_app(registry, worker=worker))
    client = live.client()
    results = {}

    def ask(i: int) -> None:
        given = {"guidance": 3.0} if i == 3 else {}  # other settings: never in the same batch
        results[i] = client.images.generate(model="shapes", prompt=f"a red circle {i}",
                                            extra_body={"seed": i, **given})  # fmt: skip

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        deadline = time.time() + 10
        while worker.waiting < 4 and time.time() < deadline:
            time.sleep(0.05)
        gate.set()
        for t in threads:
            t.join(60)
        assert worker.batches_run >= 1 and len(results) == 4
        alone = client.images.generate(model="shapes", prompt="a red circle 1",
                                       extra_body={"seed": 1})  # fmt: skip
        merged = np.asarray(png(results[1].data[0].b64_json)).astype(int)
        assert np.abs(merged - np.asarray(png(alone.data[0].b64_json)).astype(int)).max() <= 1
        # the request with its own guidance drew what the library draws with it
        library = registry.get("shapes").pipeline
        want = [np.asarray(library(["a red circle 3"], 1, seed=3, guidance=g)[0]).astype(int)
                for g in (3.0, None)]  # fmt: skip
        served = np.asarray(png(results[3].data[0].b64_json)).astype(int)
        assert np.abs(served - want[0]).max() <= 1 and np.abs(served - want[1]).max() > 1
    finally:
        gate.set()
        live.stop()
        worker.stop()


def test_a_client_that_leaves_frees_its_place(registry):
    gate = threading.Event()
    worker = Worker(max_queue=1)
    worker.submit(Job(key=None, images=1, run=lambda: (gate.wait(30), [])[1]))
    live = LiveServer(create_app(registry, worker=worker))
    try:
        with pytest.raises(httpx.ReadTimeout):  # queued behind the busy worker, then gone
            httpx.post(f"{live.base}/v1/images/generations", timeout=0.8,
                       json={"model": "shapes", "prompt": "a red circle"})  # fmt: skip
        deadline = time.time() + 5
        while worker.waiting and time.time() < deadline:  # noticed within half a second
            time.sleep(0.1)
        assert worker.waiting == 0
        results = []
        asker = threading.Thread(target=lambda: results.append(
            live.client().images.generate(model="shapes", prompt="a blue square")))  # fmt: skip
        asker.start()  # the worker is still busy: this one takes the freed place, no 429
        time.sleep(0.5)
        gate.set()
        asker.join(60)
        assert len(results) == 1 and len(results[0].data) == 1
    finally:
        gate.set()
        live.stop()
        worker.stop()


def test_under_load_every_request_is_answered(registry):
    import resource

    worker = Worker(max_queue=4)
    live = LiveServer(create_app(registry, worker=worker))
    unclip = next(m.name for m in registry.models.values() if m.kind == "UnclipPipeline")
    statuses, errors = [], []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stop = time.time() + 8

    def client_loop() -> None:
        with httpx.Client(timeout=60) as http:
            while time.time() < stop:
                try:
                    r = http.post(f"{live.base}/v1/images/generations",
                                  json={"model": unclip, "prompt": "a red circle", "n": 2})  # fmt: skip
                    statuses.append(r.status_code)
                except Exception as e:  # a lost request: no answer at all
                    errors.append(repr(e))

    threads = [threading.Thread(target=client_loop) for _ in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        live.stop()
        worker.stop()
    assert not errors, errors[:3]
    assert statuses and set(statuses) <= {200, 429}, set(statuses)
    assert statuses.count(200) >= 4 and statuses.count(429) >= 1  # served, and said so when full
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, grown_mb  # memory stays bounded


def test_dalle_serve_starts_and_answers(tmp_path):
    import os
    import subprocess
    import sys

    port = free_port()
    env = {**os.environ, "DALLE_API_KEY": "k3y"}
    proc = subprocess.Popen([sys.executable, "-m", "dalle", "serve", "--port", str(port),
                             "--model", "shapes", "--threads", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
                time.sleep(0.2)
        assert health.json()["models"] == ["shapes"]
        denied = httpx.get(f"http://127.0.0.1:{port}/v1/models")
        assert (
            denied.status_code == 401 and denied.json()["error"]["type"] == "authentication_error"
        )
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k3y")
        assert [m.id for m in client.models.list()] == ["shapes"]
        # a second server on the same port: one line saying so, exit 2, before loading anything
        second = subprocess.run([sys.executable, "-m", "dalle", "serve", "--port", str(port)],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert second.returncode == 2 and f"cannot serve at 127.0.0.1:{port}" in second.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def test_inpainting_previews_spread_over_repaints_own_steps(tiny_unclip, monkeypatch):
    """RePaint keeps its own step count (not the pipeline's text-to-image steps): the previews
    of a streamed unCLIP inpainting are spread over those steps."""
    import torch

    import dalle.server.app as app
    from dalle.pipelines.editing import REPAINT_STEPS
    from dalle.pipelines.unclip_pipeline import UnclipPipeline
    from dalle.server.models import ServedModel

    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    assert pipe.decoder_defaults.steps < REPAINT_STEPS
    model = ServedModel("tiny", str(tiny_unclip), "UnclipPipeline", pipe, 16)
    req = app.ImageRequest(model, "a red circle", 1, "b64_json", True, 2, 0, None, None, None)
    decoder_steps, fired = [], []  # the decoder steps seen, and those at which a preview went out
    real = app._previews

    def spy(*args, **kwargs):
        on_step, on_upsampler_step = real(*args, **kwargs)

        def counted(i, x0):
            decoder_steps.append(i)
            on_step(i, x0)

        return counted, on_upsampler_step

    monkeypatch.setattr(app, "_previews", spy)
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[4:12, 4:12] = True
    images = app._inpaint(req, Image.new("RGB", (16, 16)), region,
                          on_partial=lambda i, _: fired.append((i, decoder_steps[-1])))  # fmt: skip
    assert len(images) == 1 and sorted(set(decoder_steps)) == list(range(REPAINT_STEPS))
    # a third and two thirds of the way: round(25 / 3) - 1 and round(50 / 3) - 1
    assert fired == [(0, round(REPAINT_STEPS / 3) - 1), (1, round(2 * REPAINT_STEPS / 3) - 1)]
