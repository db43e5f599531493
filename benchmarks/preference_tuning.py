"""Would preference tuning (DPO) on the bundled CLIP's choices lift the DALL·E transformer?

CLIP reranking lifts the bundled `shapes` pipeline from about 84 % to 96 % of seen prompts
(docs/transformer.md), so the pipeline's own CLIP knows which of its drawings are right more
often than the transformer draws them. This distils that choice into the transformer, as Direct
Preference Optimization (Rafailov et al. 2023) on image-token sequences:

1. ``--n`` captions of the shapes ``train`` split in the users mix (held-out pairs never appear),
   ``--k`` drawings of each at the pipeline's defaults (guidance, top-k), fp32;
2. each caption's drawings scored by the bundled CLIP (cosine with the caption); the best and the
   worst form a pair if their cosines differ by more than ``--margin``;
3. the frozen model's log-likelihood of both (the reference), then ``--epochs`` passes of
   ``-log sigmoid(beta [(log p(w) - log p_ref(w)) - (log p(l) - log p_ref(l))])`` plus ``--lm``
   times the usual DALL·E loss on the scenes' own renders (caption dropout 0.15, so that the
   unconditional half of guidance keeps learning), batch ``--batch`` pairs, AdamW, warm-up 10
   steps then cosine from ``--lr``;
4. the tuned transformer written as a pipeline folder, ``OUT/pipeline`` (fp16), to be scored with
   ``dalle eval generation --model OUT/pipeline --prompts-seed 1``.

``--beta 0`` removes the preference term (the same steps on the renders alone: the control).
``--check-pairs`` also reads every drawing with the shapes scorer and prints how often CLIP's
best is right and its worst wrong (a diagnostic: the scorer never feeds the training).

    python benchmarks/preference_tuning.py --n 1024 --k 8 --margin 0.08 --lr 2e-5 --out runs/dpo
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from dalle.data.registry import open_dataset
from dalle.models.transformer import dalle_loss
from dalle.pipelines.dalle_pipeline import DallePipeline

USERS_MIX = "shapes:train?two_objects=0.75&size_words=0.75"


def draw_pairs(pipe: DallePipeline, n: int, k: int, seed: int, batch: int = 256) -> dict:
    """The captions, their renders' tokens and ``k`` drawings each with CLIP's cosines."""
    captions, renders = [], []
    for image, caption in open_dataset(USERS_MIX, image_size=64, seed=seed):
        captions.append(caption)
        renders.append(image)
        if len(captions) == n:
            break
    truth = torch.cat([pipe.vae.encode(torch.stack(renders[i : i + batch])).flatten(1)
                       for i in range(0, n, batch)])  # fmt: skip
    prompts = [c for c in captions for _ in range(k)]
    seeds = [seed * 1_000_003 + i for i in range(len(prompts))]
    tokens, cosines, start = [], [], time.time()
    for i in range(0, len(prompts), batch):
        drawn = pipe.generate_tokens(prompts[i : i + batch], seeds[i : i + batch], pipe.defaults,
                                     bf16=False)  # fmt: skip
        cosines.append(pipe.clip.cosine(pipe.decode_pixels(drawn, False), prompts[i : i + batch]))  # type: ignore[union-attr]
        tokens.append(drawn.cpu())
        print(f"drew {i + len(drawn)} of {len(prompts)} ({time.time() - start:.0f} s)", flush=True)
    return {
        "tokens": torch.cat(tokens).view(n, k, -1), "cosine": torch.cat(cosines).view(n, k),
        "text": pipe.encode_prompts(captions).cpu(), "truth": truth, "captions": captions,
    }  # fmt: skip


def sequence_logp(model, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """(B,) log-likelihood of each caption's image tokens under ``model``."""
    _, logits = model(text, image[:, :-1])
    return torch.log_softmax(logits.float(), -1).gather(-1, image[..., None])[..., 0].sum(-1)


def check_pairs(pipe: DallePipeline, data: dict, winner, loser) -> dict:
    from dalle.eval.shapes_scorer import score_image

    n, k, _ = data["tokens"].shape
    right = np.zeros((n, k), bool)
    for i in range(0, n, 32):
        pixels = pipe.decode_pixels(data["tokens"][i : i + 32].flatten(0, 1), False)
        arrays = (pixels.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for j, array in enumerate(arrays):
            right[i + j // k, j % k] = score_image(array, data["captions"][i + j // k]).correct
    rows = np.arange(n)
    return {"drawings_right": float(right.mean()), "best_right": float(right[rows, winner].mean()),
            "worst_wrong": float((~right[rows, loser]).mean())}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="shapes")
    p.add_argument("--n", type=int, default=1024, help="captions")
    p.add_argument("--k", type=int, default=8, help="drawings per caption")
    p.add_argument("--seed", type=int, default=78, help="the captions' and drawings' seed")
    p.add_argument("--margin", type=float, default=0.08, help="least cosine gap of a pair")
    p.add_argument("--beta", type=float, default=0.1, help="DPO's beta; 0: the control")
    p.add_argument("--lm", type=float, default=1.0, help="weight of the loss on the renders")
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=16, help="pairs per step")
    p.add_argument("--check-pairs", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = DallePipeline.from_pretrained(args.model)
    reference = pipe.transformer.float().eval()
    cached = out / "pairs.safetensors"
    if cached.exists():  # the drawings are the slow part: another run's settings reuse them
        captions = json.loads((out / "captions.json").read_text())
        data = {**load_file(str(cached)), "captions": captions}
    else:
        data = draw_pairs(pipe, args.n, args.k, args.seed)
        save_file({k: v.contiguous() for k, v in data.items() if k != "captions"}, str(cached))
        (out / "captions.json").write_text(json.dumps(data["captions"]))
    cosine = data["cosine"]
    winner, loser = cosine.argmax(1), cosine.argmin(1)
    if args.check_pairs:
        print(json.dumps(check_pairs(pipe, data, winner.numpy(), loser.numpy())), flush=True)
    kept = torch.nonzero(cosine.max(1).values - cosine.min(1).values > args.margin)[:, 0]
    tokens, text = data["tokens"], data["text"]
    w, lose, t = tokens[kept, winner[kept]], tokens[kept, loser[kept]], text[kept]
    print(f"{len(kept)} pairs of {len(cosine)} captions", flush=True)
    with torch.inference_mode():
        ref_w = torch.cat([sequence_logp(reference, t[i : i + 64], w[i : i + 64])
                           for i in range(0, len(kept), 64)])  # fmt: skip
        ref_l = torch.cat([sequence_logp(reference, t[i : i + 64], lose[i : i + 64])
                           for i in range(0, len(kept), 64)])  # fmt: skip

    policy = copy.deepcopy(reference).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr, betas=(0.9, 0.96),
                                  weight_decay=0.0)  # fmt: skip
    steps = math.ceil(args.epochs * len(kept) / args.batch)
    rng = torch.Generator().manual_seed(0)
    null, truth, config = pipe.null_text().cpu(), data["truth"], reference.config
    start = time.time()
    for step in range(steps):
        lr = args.lr * min(1.0, (step + 1) / 10) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        b = torch.randint(0, len(kept), (args.batch,), generator=rng)
        moved_w = sequence_logp(policy, t[b], w[b]) - ref_w[b]
        moved_l = sequence_logp(policy, t[b], lose[b]) - ref_l[b]
        preference = -F.logsigmoid(args.beta * (moved_w - moved_l)).mean()
        g = torch.randint(0, len(truth), (args.batch,), generator=rng)
        captions = torch.where((torch.rand(args.batch, generator=rng) < 0.15)[:, None], null,
                               text[g])  # fmt: skip
        renders = dalle_loss(policy, captions, truth[g], config)["loss"]
        optimizer.zero_grad(set_to_none=True)
        (preference + args.lm * renders).backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            print(json.dumps({"step": step, "of": steps, "preference": round(preference.item(), 4),
                              "renders": round(renders.item(), 4),
                              "winner_moved": round(moved_w.mean().item(), 2),
                              "loser_moved": round(moved_l.mean().item(), 2),
                              "seconds": round(time.time() - start)}), flush=True)  # fmt: skip
    tuned = DallePipeline(pipe.tokenizer, pipe.vae, policy.eval(), pipe.defaults, pipe.clip)
    folder = tuned.save_pretrained(out / "pipeline", torch.float16)
    print(f"wrote {folder}: dalle eval generation --model {folder} --prompts-seed 1", flush=True)


if __name__ == "__main__":
    main()
