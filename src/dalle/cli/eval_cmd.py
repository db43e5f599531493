"""``dalle eval``: score generated images."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from dalle.cli.sampling_args import (
    add_candidates_argument,
    add_sampling_arguments,
    add_unclip_arguments,
    check_pipeline_args,
    given_unclip_settings,
    load_pipeline,
)
from dalle.cli.validate import (
    add_replace_argument,
    check_candidates,
    non_negative_float,
    non_negative_int,
    output_folder,
    positive_int,
    unit_interval,
)
from dalle.eval.shapes_report import failure_grid, score_folder
from dalle.pipelines.editing import (
    INPAINT_METHODS,
    TEXT_DIFF_CAPTIONS,
    VARIATION_CANDIDATES_PER_IMAGE,
    VARIATION_ETA,
    VARIATION_ETA_FROM,
    VARIATION_FRESH_GUIDANCE,
    EditSettings,
)
from dalle.text.prompts import read_prompts


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="evaluate generated images")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)
    shapes = ev_sub.add_parser(
        "shapes",
        help="score images of the shapes world against their prompts",
        description=(
            "Score every DIR/{prompt:04d}_{image:02d}.png against line `prompt` (from 0) of the "
            "prompts file with the exact shapes scorer. Reports accuracy on seen and held-out "
            "prompts and the errors per attribute, and writes a grid of the failures."
        ),
    )
    shapes.add_argument("dir", help="folder of generated images")
    shapes.add_argument(
        "--prompts", required=True, help="prompts file, one canonical prompt a line"
    )
    shapes.add_argument(
        "--failures",
        default=None,
        help="where to write the failure grid PNG (default DIR/failures.png)",
    )
    shapes.add_argument(
        "--max-failures",
        type=int,
        default=64,
        help="at most this many failures in the grid (default 64)",
    )
    shapes.add_argument("--json", action="store_true", help="print the report as one JSON line")
    shapes.set_defaults(func=_eval_shapes)

    rec = ev_sub.add_parser(
        "reconstruction",
        help="how well a dVAE reconstructs the shapes world",
        description=(
            "Encode and decode N images of a shapes split with a dVAE; report mean PSNR, the "
            "shapes-scorer accuracy of the reconstructions on their canonical captions (seen and "
            "held-out), and how many codebook entries are in use."
        ),
    )
    rec.add_argument(
        "--model", default="shapes", help="dVAE folder or bundled name (default shapes)"
    )
    rec.add_argument("--n", type=positive_int, default=1000, help="number of images (1000)")
    rec.add_argument("--split", default="test", choices=("train", "test"),
                     help="shapes split to draw the scenes from (default test)")  # fmt: skip
    rec.add_argument("--seed", type=non_negative_int, default=0, help="seed of the scenes (0)")
    rec.add_argument("--json", action="store_true", help="print the report as one JSON line")
    rec.set_defaults(func=_eval_reconstruction)

    gen = ev_sub.add_parser(
        "generation",
        help="how often a pipeline draws what shapes prompts say",
        description=(
            "Generate --num-images images for each of the canonical evaluation prompts of the "
            "shapes world (`dalle data shapes-prompts`, or --prompts FILE), write them to OUT, and "
            "score them with the exact shapes scorer: accuracy on seen and held-out prompts."
        ),
    )
    gen.add_argument("--prompts", default=None, help="prompts file (default: the canonical set)")
    gen.add_argument(
        "--n-prompts", type=positive_int, default=128, help="size of the canonical set (128)"
    )
    gen.add_argument(
        "--mix", default="users", choices=("users", "balanced"),
        help="the canonical set's mix: users (three quarters two-object, most stating sizes; the "
        "default) or balanced (half one-object, two-object prompts without sizes)",
    )  # fmt: skip
    gen.add_argument(
        "--prompts-seed", type=int, default=0,
        help="seed of the canonical set (0 is the reported set; choose settings on another)",
    )  # fmt: skip
    gen.add_argument(
        "--out", default="eval_generation", help="where the images go (default eval_generation)"
    )
    add_replace_argument(gen)
    gen.add_argument("--json", action="store_true", help="print the report as one JSON line")
    add_sampling_arguments(gen)
    add_unclip_arguments(gen)
    add_candidates_argument(gen)
    gen.set_defaults(func=_eval_generation)

    clip = ev_sub.add_parser(
        "clip",
        help="CLIP on the shapes world: caption retrieval and zero-shot attributes",
        description=(
            "Image-to-text retrieval top-1 over the distinct canonical captions (sizes stated) of N "
            "test images, and zero-shot accuracy for colour, shape, size and relation (the true "
            "caption against the same caption varied in that attribute), each for images with "
            "and without a held-out colour/shape pair."
        ),
    )
    clip.add_argument(
        "--model", default="shapes", help="CLIP folder, pipeline folder or bundled name (shapes)"
    )
    clip.add_argument("--n", type=positive_int, default=1000, help="test images (default 1000)")
    clip.add_argument("--seed", type=non_negative_int, default=0, help="seed of the scenes (0)")
    clip.add_argument("--json", action="store_true", help="print the report as one JSON line")
    clip.set_defaults(func=_eval_clip)

    prior = ev_sub.add_parser(
        "prior",
        help="retrieval by the unCLIP prior's embeddings against the text embeddings",
        description=(
            "Render one image for each of --n canonical prompts of the users mix (three quarters "
            "two-object, most stating sizes, a quarter held-out); retrieve among them by each "
            "prompt's CLIP text embedding and by the prior's image embedding. Prints retrieval "
            "top-1 and the mean cosine to the right image, seen and held-out, and the prior's "
            "top-1 as a fraction of the text's (docs/unclip.md)."
        ),
    )
    prior.add_argument("--model", default="shapes-unclip", help="unCLIP pipeline or bundled name")
    prior.add_argument("--n", type=positive_int, default=128, help="prompts (default 128)")
    prior.add_argument(
        "--prompts-seed", type=int, default=0, help="0: the reported set; 1: validation"
    )
    prior.add_argument("--seed", type=non_negative_int, default=0, help="seed of the prior's draws")
    add_unclip_arguments(prior, stages=("prior",))
    prior.add_argument(
        "--best-of", type=positive_int, default=None, help="draws per prompt kept by CLIP"
    )
    prior.add_argument("--json", action="store_true", help="print the report as one JSON line")
    prior.set_defaults(func=_eval_prior)

    editing = ev_sub.add_parser(
        "editing",
        help="how often variations, text diffs, inpainting and interpolations do what they say",
        description=(
            "Render a scene for each of --n canonical prompts (seen colour/shape pairs, sizes "
            "stated, a quarter one-object) and edit it with the unCLIP pipeline: variations "
            "(still the source's caption? not a copy, PSNR under 35 dB?), text diffs changing "
            "the first object's colour (read as the target caption?), inpainting one object of "
            "two-object scenes in another colour, the mask its box plus 2 px (read as the new "
            "caption? every pixel outside the mask within 2 levels?; also with --dalle-model), "
            "and interpolations between consecutive scenes (first and last frames read as their "
            "sources?). Prints the rates (docs/editing.md)."
        ),
    )
    editing.add_argument("--model", default="shapes-unclip", help="unCLIP pipeline or bundled name")
    editing.add_argument("--dalle-model", default=None,
                         help="also inpaint with this DALL·E pipeline (e.g. shapes)")  # fmt: skip
    editing.add_argument("--n", type=positive_int, default=64, help="prompts (default 64)")
    editing.add_argument("--prompts-seed", type=non_negative_int, default=0,
                         help="0: the reported set; 1: validation")  # fmt: skip
    editing.add_argument("--num-variations", type=positive_int, default=2,
                         help="variations per scene (default 2)")  # fmt: skip
    editing.add_argument("--amount", type=unit_interval, default=0.5,
                         help="text-diff slerp amount in [0, 1] (default 0.5)")  # fmt: skip
    editing.add_argument("--eta", type=unit_interval, default=VARIATION_ETA,
                         help=f"the variations' DDIM eta in [0, 1] (default {VARIATION_ETA:g}, "
                         "as dalle vary)")  # fmt: skip
    editing.add_argument("--eta-from", type=unit_interval, default=VARIATION_ETA_FROM, metavar="F",
                         help="the variations' eta applies from this fraction of the schedule "
                         f"down, the steps above it deterministic (default {VARIATION_ETA_FROM:g}, "
                         "as dalle vary)")  # fmt: skip
    editing.add_argument("--fresh-guidance", type=non_negative_float, default=VARIATION_FRESH_GUIDANCE,
                         metavar="G", help="the variations' decoder guidance below --eta-from "
                         f"(default {VARIATION_FRESH_GUIDANCE:g}, as dalle vary)")  # fmt: skip
    editing.add_argument("--candidates", type=positive_int, default=None, metavar="M",
                         help="draw M variations per scene and keep the --num-variations "
                         "closest to it in CLIP space (default as dalle vary: "
                         f"{VARIATION_CANDIDATES_PER_IMAGE} x --num-variations)")  # fmt: skip
    editing.add_argument("--decoder-captions", action=argparse.BooleanOptionalAction,
                         default=TEXT_DIFF_CAPTIONS,
                         help="the text diffs' decoder reads the source caption while "
                         "inverting and the target while decoding (default, as dalle edit)")  # fmt: skip
    editing.add_argument("--decoder-steps", type=positive_int, default=EditSettings.steps,
                         help="DDIM steps of every inversion and decoding (variations, text "
                         f"diffs, interpolations; default {EditSettings.steps}, as dalle vary)")  # fmt: skip
    editing.add_argument("--decoder-guidance", type=non_negative_float, default=EditSettings.guidance,
                         help="decoder guidance on the CLIP embedding in those inversions and "
                         f"decodings, 1 is off (default {EditSettings.guidance:g}, as dalle vary)")  # fmt: skip
    editing.add_argument("--inpaint-method", choices=INPAINT_METHODS, default=None,
                         help="how the unCLIP decoder inpaints (default: mask if it was "
                         "trained to, else repaint)")  # fmt: skip
    editing.add_argument("--edits", default="variations,text_diff,inpaint,interpolate",
                         help="comma-separated subset to measure")  # fmt: skip
    editing.add_argument("--json", action="store_true", help="print the report as one JSON line")
    editing.set_defaults(func=_eval_editing)

    score = ev_sub.add_parser(
        "clipscore",
        help="CLIPScore of a folder of images with their prompts",
        description=(
            "CLIPScore (Hessel et al. 2021: 2.5 x max(cos, 0)) of every DIR/{prompt:04d}_{image:02d}"
            ".png with line `prompt` of --prompts, or, without --prompts, with the prompt stored in "
            "the PNG's text chunk (what `dalle generate` writes). The CLIP is the bundled one, a "
            "CLIP folder (--clip), or an OpenAI / open_clip ViT state dict in safetensors "
            "(--clip-weights) with its Hugging Face tokenizer.json (--clip-tokenizer)."
        ),
    )
    score.add_argument("dir", help="folder of images")
    score.add_argument("--prompts", default=None, help="prompts file, one prompt a line")
    score.add_argument("--clip", default="shapes", help="CLIP folder or bundled name (shapes)")
    score.add_argument("--clip-weights", default=None, help="OpenAI/open_clip .safetensors")
    score.add_argument("--clip-tokenizer", default=None, help="its tokenizer.json")
    score.add_argument(
        "--clip-act", default="quick_gelu", choices=("quick_gelu", "gelu"),
        help="the MLP activation of those weights (OpenAI's: quick_gelu)",
    )  # fmt: skip
    score.add_argument(
        "--clip-head-width", type=positive_int, default=64,
        help="the width of those weights' attention heads, which the file does not record "
        "(OpenAI's: 64; open_clip's ViT-H-14: 80)",
    )  # fmt: skip
    score.add_argument("--json", action="store_true", help="print the result as one JSON line")
    score.set_defaults(func=_eval_clipscore)

    fid = ev_sub.add_parser(
        "fid",
        help="FID and KID between two folders of images (or a folder and a statistics file)",
        description=(
            "Frechet distance (FID) and Kernel Inception Distance (KID, unbiased, 100 subsets of "
            "up to 1,000 as torch-fidelity computes it) between the images of REAL and GEN. "
            "Features: a bundled CLIP's image tower (--features clip, the default: offline) or "
            "the FID Inception-v3 with the weights file pytorch-fid uses (--features inception "
            "--inception-weights pt_inception-2015-12-05-6726825d.pth). Images are read as 8-bit "
            "RGB and resized with PIL bicubic (clean-fid); JPEGs are warned about. REAL or GEN "
            "may be a statistics .npz (mu, sigma; pytorch-fid's format, see --save-stats); then "
            "KID is not computed. --json prints {fid, kid, kid_std, n_real, n_gen, features}."
        ),
    )
    fid.add_argument("real", metavar="REAL", help="folder of images, or statistics .npz")
    fid.add_argument("gen", metavar="GEN", help="folder of images, or statistics .npz")
    _feature_arguments(fid)
    fid.add_argument("--save-stats", default=None, metavar="FILE.npz",
                     help="also save REAL's statistics (a folder) to FILE.npz")  # fmt: skip
    fid.add_argument("--json", action="store_true", help="print the report as one JSON line")
    fid.set_defaults(func=_eval_fid)

    inception = ev_sub.add_parser(
        "is",
        help="Inception Score of a folder of images",
        description=(
            "Inception Score (exp E KL(p(y|x) || p(y)), mean and std over --splits splits) of the "
            "images of GEN, from the FID Inception-v3 with the weights file pytorch-fid uses."
        ),
    )
    inception.add_argument("gen", metavar="GEN", help="folder of images")
    inception.add_argument("--inception-weights", required=True, metavar="FILE",
                           help="pt_inception-2015-12-05-6726825d.pth (as pytorch-fid uses)")  # fmt: skip
    inception.add_argument("--splits", type=positive_int, default=10, help="splits (10)")
    inception.add_argument(
        "--batch-size", type=positive_int, default=64, help="images at once (64)"
    )
    inception.add_argument("--json", action="store_true", help="print the report as one JSON line")
    inception.set_defaults(func=_eval_is)


def _feature_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", choices=("clip", "inception"), default="clip",
                   help="feature network (default clip: a bundled CLIP, offline)")  # fmt: skip
    p.add_argument("--model", default="shapes",
                   help="the CLIP for --features clip (default: the bundled shapes CLIP)")  # fmt: skip
    p.add_argument("--inception-weights", default=None, metavar="FILE",
                   help="for --features inception: pt_inception-2015-12-05-6726825d.pth")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=64, help="images at once (64)")


def _feature_net(args: argparse.Namespace):
    from dalle.eval.image_quality import clip_features, inception_features
    from dalle.models.inception import FID_WEIGHTS_FILE

    if args.features == "inception" or getattr(args, "inception_weights", None):
        if not args.inception_weights:
            raise ValueError(
                f"--features inception needs --inception-weights FILE ({FID_WEIGHTS_FILE}, the "
                "file pytorch-fid uses; nothing is downloaded here)"
            )
        return inception_features(args.inception_weights)
    return clip_features(args.model)


def _eval_fid(args: argparse.Namespace) -> int:
    import os

    from tqdm.auto import tqdm

    from dalle.eval.image_quality import fid_report, save_folder_statistics

    for name, path in (("REAL", args.real), ("GEN", args.gen)):
        if not (os.path.isdir(path) or (path.endswith(".npz") and os.path.isfile(path))):
            raise ValueError(f"{name} {path}: neither a folder of images nor a statistics .npz")
    if args.save_stats and not args.save_stats.endswith(".npz"):
        raise ValueError(f"--save-stats {args.save_stats}: statistics files end in .npz")
    net = _feature_net(args)
    with tqdm(desc="features", unit="img") as bar:
        report = fid_report(args.real, args.gen, net, args.batch_size, on_batch=bar.update)
    if args.save_stats:
        save_folder_statistics(args.real, args.save_stats, net, args.batch_size)
    if report["skipped"]:
        print(f"skipped {len(report['skipped'])} unreadable files; first: {report['skipped'][0]}")
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "skipped"}))
        return 0
    kid = "-" if report["kid"] is None else f"{report['kid']:.6f}"
    if report["kid"] is not None:
        spread = report["kid_std"]
        kid += (f" +- {spread:.6f}" if spread is not None
                else " (the smaller set is read whole in every subset: no spread)")  # fmt: skip
    print(f"features        {report['features']}")
    print(
        f"images          real {report['n_real'] or 'statistics'}, generated {report['n_gen'] or 'statistics'}"
    )
    print(f"FID             {report['fid']:.4f}")
    print(f"KID             {kid}")
    return 0


def _eval_is(args: argparse.Namespace) -> int:
    from dalle.eval.image_quality import inception_features, inception_score_report

    net = inception_features(args.inception_weights)
    report = inception_score_report(args.gen, net, args.splits, args.batch_size)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "skipped"}))
        return 0
    print(f"Inception Score {report['is']:.4f} +- {report['is_std']:.4f} ({report['n']} images, "
          f"{report['splits']} splits)")  # fmt: skip
    return 0


def _eval_reconstruction(args: argparse.Namespace) -> int:
    from dalle.eval.reconstruction import shapes_reconstruction_report
    from dalle.models.dvae import DiscreteVAE

    report = shapes_reconstruction_report(
        DiscreteVAE.from_pretrained(args.model), args.n, args.split, args.seed
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(report)))
        return 0
    print(f"images          {report.images} ({args.split} split, seed {args.seed})")
    print(f"mean PSNR       {report.mean_psnr:.2f} dB")
    print(f"scorer, seen    {_percent(report.seen_accuracy)}")
    print(f"scorer, held-out {_percent(report.held_out_accuracy)}")
    print(f"codes in use    {report.codes_used} of {report.num_tokens}")
    return 0


def _eval_generation(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dalle.eval.generation import shapes_generation_report
    from dalle.shapes.captions import try_parse_caption
    from dalle.shapes.prompts import evaluation_prompts

    prompts = (
        read_prompts(args.prompts)
        if args.prompts
        else evaluation_prompts(args.n_prompts, args.prompts_seed, args.mix)
    )
    for i, prompt in enumerate(prompts):  # the scorer reads them: before any image is drawn
        if try_parse_caption(prompt) is None:
            raise ValueError(f"{args.prompts}: prompt {i}, {prompt!r}, is not a shapes caption")
    folder = output_folder(args.out, replace=args.replace)
    check_pipeline_args(args)
    pipe, sampling, settings = load_pipeline(args)
    drawn = len(prompts) * (args.candidates or args.num_images)
    with tqdm(total=drawn, desc="generate", unit="img") as bar:
        report = shapes_generation_report(
            pipe, prompts, args.out, args.num_images, args.seed, on_image=bar.update,
            earlier=folder.earlier, **sampling,
        )  # fmt: skip
    summary = {
        **report.to_dict(), "settings": settings, "model": args.model,
        "candidates": args.candidates,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary))
        return 0
    seen, held = summary["seen"], summary["held_out"]
    print(f"model           {args.model} ({settings})")
    print(
        f"images          {summary['images']} ({len(prompts)} prompts x {args.num_images}, seed {args.seed})"
    )
    print(f"seen accuracy   {_percent(seen['accuracy'])} of {seen['images']}")
    print(f"held-out        {_percent(held['accuracy'])} of {held['images']}")
    print("errors          " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    _print_categories(summary["categories"])
    return 0


def _eval_clip(args: argparse.Namespace) -> int:
    from dalle.eval.clip_eval import shapes_clip_report
    from dalle.pipelines.clip_ranker import ClipRanker

    ranker = ClipRanker.from_pretrained(args.model)
    report = shapes_clip_report(ranker.clip, ranker.tokenizer, args.n, args.seed)
    if args.json:
        print(json.dumps(report))
        return 0
    r = report["retrieval_top1"]
    print(
        f"images          {report['images']} (test split, seed {args.seed}), {report['captions']} captions"
    )
    print(f"retrieval top-1 seen {_percent(r['seen'])}, held-out {_percent(r['held_out'])}")
    for attribute, z in report["zero_shot"].items():
        print(
            f"zero-shot {attribute:<9} seen {_percent(z['seen'])}, held-out {_percent(z['held_out'])}"
        )
    return 0


def _eval_prior(args: argparse.Namespace) -> int:
    from dalle.eval.prior_eval import shapes_prior_report
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    if args.n < 1:
        raise ValueError("--n must be at least 1")
    given = given_unclip_settings(args)["prior"]  # checked before loading
    pipe = UnclipPipeline.from_pretrained(args.model)
    settings = pipe.prior_settings(**given, best_of=args.best_of)
    report = shapes_prior_report(pipe, args.n, args.seed, args.prompts_seed, settings)
    report["settings"] = dataclasses.asdict(settings)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"prompts         {args.n} (users mix, prompts seed {args.prompts_seed}); {settings}")
    for split in ("seen", "held_out"):
        t, p = report["text"][split], report["prior"][split]
        ratio = report["prior_vs_text"][split]
        print(
            f"{split:<9} ({t['prompts']:>3})  top-1 text {_percent(t['top1'])}, prior "
            f"{_percent(p['top1'])} ({'-' if ratio is None else f'{ratio:.2f}'} of text); cosine "
            f"text {t['cosine']:.3f}, prior {p['cosine']:.3f}"
        )
    return 0


def _eval_editing(args: argparse.Namespace) -> int:
    import math

    from tqdm.auto import tqdm

    from dalle.eval.editing import check_edits, editing_report
    from dalle.pipelines.dalle_pipeline import DallePipeline
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    edits = check_edits(tuple(e.strip() for e in args.edits.split(",") if e.strip()))
    if not (math.isfinite(args.amount) and 0 <= args.amount <= 1):
        raise ValueError(f"--amount must be a number in [0, 1], got {args.amount}")
    for name in ("decoder_guidance", "fresh_guidance"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(
                f"--{name.replace('_', '-')} must be a number of at least 0, got {value}"
            )
    for name in ("eta", "eta_from"):
        value = getattr(args, name)
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"--{name.replace('_', '-')} must be a number in [0, 1], got {value}")
    check_candidates(args.candidates, args.num_variations, "--num-variations")
    pipe = UnclipPipeline.from_pretrained(args.model)
    dalle_pipe = DallePipeline.from_pretrained(args.dalle_model) if args.dalle_model else None
    with tqdm(desc="editing", unit="edit") as bar:
        report = editing_report(pipe, args.n, args.prompts_seed, args.num_variations, args.amount,
                                dalle_pipe, edits=edits, on_prompt=lambda _: bar.update(1),
                                inpaint_method=args.inpaint_method, eta=args.eta,
                                eta_from=args.eta_from, fresh_guidance=args.fresh_guidance,
                                diff_captions=args.decoder_captions,
                                steps=args.decoder_steps, guidance=args.decoder_guidance,
                                candidates=args.candidates)  # fmt: skip
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"prompts         {args.n} (editing set, prompts seed {args.prompts_seed})")
    for key, value in report.items():
        if key in report["counts"]:
            print(f"{key.replace('_', ' '):<28}{_percent(value)} of {report['counts'][key]}")
    return 0


def _eval_clipscore(args: argparse.Namespace) -> int:
    from dalle.eval.clip_score import folder_clipscore
    from dalle.pipelines.clip_ranker import ClipRanker

    if bool(args.clip_weights) != bool(args.clip_tokenizer):
        raise ValueError("--clip-weights and --clip-tokenizer go together")
    if args.clip_weights:
        ranker = ClipRanker.from_openai(args.clip_weights, args.clip_tokenizer, args.clip_act,
                                        args.clip_head_width)  # fmt: skip
    else:
        ranker = ClipRanker.from_pretrained(args.clip)
    prompts = read_prompts(args.prompts) if args.prompts else None
    result = folder_clipscore(ranker, args.dir, prompts)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"images          {result['images']}")
    print(f"CLIPScore       {result['clipscore']:.4f} (mean of 2.5 x max(cos, 0))")
    return 0


def _print_categories(categories: dict) -> None:
    print(
        "by category     "
        + ", ".join(
            f"{name.replace('_', ' ')} {_percent(c['accuracy'])} of {c['images']}"
            for name, c in categories.items()
            if c["images"]
        )
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _eval_shapes(args: argparse.Namespace) -> int:
    if args.max_failures < 0:
        raise ValueError("--max-failures must be at least 0")
    report = score_folder(args.dir, read_prompts(args.prompts))
    summary = report.to_dict()
    failures = report.failures
    if failures:
        out = Path(args.failures) if args.failures else Path(args.dir) / "failures.png"
        summary["failure_grid"] = str(failure_grid(failures[: args.max_failures], out))
    if args.json:
        print(json.dumps(summary))
        return 0
    seen, held = summary["seen"], summary["held_out"]
    print(f"images scored   {summary['images']}")
    print(f"seen accuracy   {_percent(seen['accuracy'])} of {seen['images']}")
    print(f"held-out        {_percent(held['accuracy'])} of {held['images']}")
    print("errors          " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    _print_categories(summary["categories"])
    if failures:
        print(f"failure grid    {summary['failure_grid']}")
    return 0
