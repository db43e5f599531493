"""Options every ``dalle train STAGE`` command shares, and the run config they produce."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dalle.cli.sampling_args import BF16_UNITS
from dalle.cli.validate import fraction, non_negative_int, positive_float, positive_int
from dalle.config import Config

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

    from dalle.training.loop import AcceleratedTrainer

C = TypeVar("C", bound=Config)


def add_run_arguments(p: argparse.ArgumentParser, presets: list[str], out: str) -> None:
    """``--preset``, ``--data``, ``--out``, ``--resume`` and the overrides of a run config."""
    p.add_argument(
        "--preset",
        default="shapes",
        help=f"model and training preset (default shapes; known: {', '.join(presets)})",
    )
    p.add_argument(
        "--data",
        default=None,
        help="data set: shapes, a folder, metadata.jsonl folder, tar shards, CelebA "
        "(default from the preset)",
    )
    p.add_argument("--out", default=out, help=f"run folder (default {out})")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --out, exactly",
    )
    p.add_argument(
        "--allow-changes",
        action="store_true",
        help="with --resume: continue although settings differ from the run's train_config.json "
        "(e.g. more --steps); the earlier file is kept beside the new one",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="total optimizer steps (default the preset's)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="(global) batch size (default the preset's)",
    )
    p.add_argument(
        "--lr", type=positive_float, default=None, help="peak learning rate (default the preset's)"
    )
    p.add_argument(
        "--warmup-steps", type=non_negative_int, default=None,
        help="linear warm-up to --lr over this many steps (default the preset's)",
    )  # fmt: skip
    p.add_argument(
        "--ema-decay", type=fraction, default=None,
        help="decay of the weights' exponential moving average, which is what the run exports "
        "(default the preset's). It warms up: step t uses min(decay, (1 + t) / (10 + t)), so "
        "the value matters only after about 10 / (1 - decay) steps",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint-every", type=positive_int, default=None, metavar="N",
        help="write a checkpoint (what --resume continues from) every N steps (default the "
        "preset's)",
    )  # fmt: skip
    p.add_argument(
        "--sample-every", type=positive_int, default=None, metavar="N",
        help="write a sample grid to OUT/samples every N steps (default the preset's)",
    )  # fmt: skip
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"bf16 autocast (--no-bf16: fp32). Default: on where the machine has {BF16_UNITS}, "
        "off elsewhere (on other CPUs bf16 autocast made a step 22x slower)",
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=None,
        help="seed of the initialisation, the data order and the noise (default the preset's)",
    )  # fmt: skip
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's: the physical cores, or OMP_NUM_THREADS)",
    )
    p.add_argument(
        "--val-data", default=None, metavar="SPEC",
        help="validation data (any --data spec, e.g. shapes:test or a folder): the EMA weights' "
        "losses on it are logged to OUT/metrics.jsonl as val_* and printed, with the same noise "
        "at every validation. Default: none",
    )  # fmt: skip
    p.add_argument(
        "--val-size", type=positive_int, default=None, metavar="N",
        help="validation examples: the first N of --val-data read once, unreadable files "
        "skipped (the last, smaller batch a multiple of the processes); of a stream, N rounded "
        "up to whole batches (default 256)",
    )  # fmt: skip
    p.add_argument(
        "--val-every", type=positive_int, default=None, metavar="N",
        help="validate every N steps (default: at every checkpoint) and at the last step "
        "(--stop-at's too)",
    )  # fmt: skip
    p.add_argument(
        "--stop-at",
        type=positive_int,
        default=None,
        help="stop (after a checkpoint) at this step, keeping the schedule of --steps, and "
        "export the model so far (to evaluate it mid-run; --resume goes on)",
    )


def add_caption_dropout_argument(p: argparse.ArgumentParser, dest: str, default: str) -> None:
    """``--caption-dropout P``: the fraction of samples trained on the null caption (guidance)."""
    p.add_argument(
        "--caption-dropout", dest=dest, type=fraction, default=None, metavar="P",
        help=f"fraction of the samples trained with the null caption, so that the model also "
        f"draws unconditionally, for classifier-free guidance (default the preset's: {default})",
    )  # fmt: skip


def add_init_argument(p: argparse.ArgumentParser, what: str, grows: str) -> None:
    """``--init``: start a new run from existing weights, possibly of a smaller model."""
    p.add_argument(
        "--init", default=None, metavar="NAME_OR_DIR",
        help=f"start from this {what}'s weights instead of a random initialisation (fine-tuning, "
        f"or a longer run on from a finished one). It may be smaller than the run's model "
        f"({grows}): what the run's model adds starts as the identity, so training starts from "
        f"what the given weights draw. Anything else must match (its tokenizer and, for "
        f"a decoder, its CLIP)",
    )  # fmt: skip


def start_from(
    trainer: AcceleratedTrainer, cls: type, name: str, device: torch.device | str,
    part: str | None = None,
) -> None:  # fmt: skip
    """Load ``cls`` weights ``name`` into a new run, grown (``cls.grown_from``) to the run's
    model config if they are of a smaller one."""
    from dalle.folders import part_path

    path = part_path(name, cls.__name__, part)
    start = cls.from_pretrained(name, device, part=part)
    grew, given = "", start.config
    if given != trainer.model_config:
        try:
            start = cls.grown_from(start, trainer.model_config)
        except ValueError as e:
            raise ValueError(
                f"--init {name} is not the run's model and cannot grow into it: {e}. (Same "
                f"tokenizer, CLIP and preset as the run that made it?)"
            ) from None
        grew = f", grown ({given.changes(trainer.model_config)})"
    trainer.init_from(start)
    print(f"initialised from {path}{grew}")


def run_config(cls: type[C], args: argparse.Namespace) -> C:
    """The preset's run config with every option the user gave applied; a preset name that
    does not exist is an error that lists the known ones (never a fallback to defaults)."""
    base = cls.from_preset(args.preset)
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if getattr(args, f.name, None) is not None
    }
    return base.replace(**changes)


def open_training_data(config, image_size: int):
    """The run's data set at ``image_size``, with the run's augmentation (none for the shapes
    world, which renders exact images)."""
    from dalle.data import open_dataset

    transform = None
    if config.augment.random:
        if config.data == "shapes" or config.data.startswith("shapes:"):
            raise ValueError("the shapes world renders exact images: it takes no augmentation")
        transform = config.augment.transform(image_size)
    from dalle.data.shards import WebDatasetShards

    dataset = open_dataset(
        config.data, image_size=image_size, seed=config.seed, transform=transform
    )
    if isinstance(dataset, WebDatasetShards):
        # every process reads the same global batches and takes its slice (dalle.training.loop)
        dataset.rank, dataset.world_size = 0, 1
    return dataset


def prepare_tokenizer(given: str | None, config, dataset, out: Path, accelerator):
    """The tokenizer at ``given``, else the run's ``OUT/tokenizer.json``, trained on the data's
    first ``config.tokenizer_captions`` captions by the main process if it is not there yet."""
    from dalle.text.tokenizer import TextTokenizer

    if given:
        return TextTokenizer.from_file(given)
    path = out / "tokenizer.json"
    if accelerator.is_main_process and not path.is_file():
        captions = itertools.islice(dataset.captions(), config.tokenizer_captions)
        TextTokenizer.train(captions, vocab_size=config.tokenizer_vocab).save(path)
    accelerator.wait_for_everyone()
    return TextTokenizer.from_file(path)


def encoded_batches(config, dataset, encoder, out: Path, accelerator, with_images: bool = False):
    """Batches of ``encoder``'s view of the data (and the images, ``with_images``): a finite data
    set is encoded once (by the main process, under a progress bar) into
    ``OUT/<encoder.cache_file>`` and read from there."""
    from tqdm.auto import tqdm

    from dalle.data.base import SkipReport
    from dalle.training.encoded_data import (
        EncodedBatches,
        encode_dataset,
        is_finite,
        load_cache,
        save_cache,
    )

    report, cache = SkipReport(), None
    if is_finite(dataset):
        if config.augment.random:
            logger.warning(
                "random augmentation with encodings cached once: each image is encoded with one "
                "draw of it (epoch 0's) for the whole run"
            )
        path = out / encoder.cache_file
        data = f"{config.data} ({len(dataset)} examples)"
        found = load_cache(path, encoder, data) if accelerator.is_main_process else None
        stale = found is None or (with_images and found.indices is None)
        if accelerator.is_main_process and stale:
            with tqdm(
                total=len(dataset), desc=f"encode images ({encoder.kind})", unit="img"
            ) as bar:
                cache = encode_dataset(dataset, encoder, report=report, on_batch=bar.update)
            save_cache(path, encoder, cache, data)
            print(f"cached the {encoder.description} of {len(cache.captions)} images in {path}")
        accelerator.wait_for_everyone()
        cache = load_cache(path, encoder, data)
    return EncodedBatches(
        dataset, encoder, config.batch_size, config.seed, cache, report, with_images
    )


def validation_batches(
    config, image_size: int, accelerator, encoder=None, with_images: bool = False
) -> list | None:
    """``config.val_size`` examples of ``config.val_data`` (None: no validation) at
    ``image_size``, without augmentation, in the training batches' form (encoded by ``encoder``,
    with the images if ``with_images``, as :func:`encoded_batches` gives them; else images and
    captions): a finite data set's first examples, each once (batches of the run's size and a
    last smaller one, a multiple of the processes); a stream's first batches. CelebA's ``valid``
    partition; a seed of its own, the same for every run. Read once, kept in memory."""
    import math

    from torch.utils.data import IterableDataset

    from dalle.data import open_dataset
    from dalle.data.base import BadFile, SkipReport
    from dalle.data.registry import validation_split
    from dalle.data.shards import WebDatasetShards
    from dalle.training.batches import StepBatches
    from dalle.training.encoded_data import EncodedBatches
    from dalle.training.loop import VALIDATION_SEED

    if not config.val_data:
        return None
    spec, size, seed = config.val_data, config.val_size, VALIDATION_SEED
    dataset = open_dataset(spec, image_size=image_size, split=validation_split(spec), seed=seed)
    if isinstance(dataset, WebDatasetShards):
        dataset.rank, dataset.world_size = 0, 1  # every process reads the whole set
    report, found = SkipReport(), []
    batch, processes = config.batch_size, accelerator.num_processes
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        parts = [(dataset, batch, math.ceil(size / batch))]
    else:  # each of the first examples read once; unreadable ones skipped and counted
        n, items = min(size, len(dataset)), []
        for item in (dataset[i] for i in range(n)):
            if isinstance(item, BadFile):
                report.add(item)
            else:
                items.append(item)
        full, rest = divmod(len(items), batch)
        rest -= rest % processes
        parts = [(items[: full * batch], batch, full)] if full else []
        if rest:
            parts.append((items[full * batch : full * batch + rest], rest, 1))
        if not parts:
            raise ValueError(
                f"the validation data {spec} has {len(items)} readable examples of the first "
                f"{n}: fewer than the {processes} processes"
                if items
                else f"the validation data {spec} has no readable examples"
            )
    for source, size_of_batch, count in parts:
        if encoder is not None:
            batches = EncodedBatches(
                source, encoder, size_of_batch, seed, None, report, with_images
            )(0)
        else:
            batches = StepBatches(source, size_of_batch, 0, seed, report)
        try:
            found += [next(batches) for _ in range(count)]
        finally:
            if hasattr(batches, "close"):
                batches.close()
    if accelerator.is_main_process:
        skipped = f"; {report.summary()}" if report.count else ""
        examples = sum(len(b[-1]) for b in found)
        print(f"validation: {examples} examples of {spec}{skipped}")
    return found


def run_folder(args: argparse.Namespace, config: Config) -> Path:
    """``--out``, refused if it already holds a run (a complete checkpoint) and ``--resume`` was
    not given; on ``--resume``, the run's settings checked against ``config`` at once, before
    any data is read or encoded (:func:`check_resumed_config`); else ``--init`` found."""
    from dalle.training.checkpoint import checkpoints

    out = Path(args.out)
    if not args.resume and checkpoints(out):
        raise ValueError(
            f"{out} already holds a run: pass --resume to continue it, or another --out"
        )
    if args.resume:
        check_resumed_config(out, config, getattr(args, "allow_changes", False), main=False)
    elif getattr(args, "init", None):  # found before any data is read (a resume does not read it)
        from dalle.folders import resolve

        try:
            resolve(args.init)
        except FileNotFoundError as e:
            raise ValueError(f"--init: {e}") from None
    return out


# settings that do not alter the run (a resume may change them freely); bf16 is the machine's
# (a run moved between a CPU with bf16 units and one without goes on in the dtype each does best)
HARMLESS_CHANGES = {
    "checkpoint_every", "sample_every", "sample_steps", "log_every", "val_data", "val_size",
    "val_every", "bf16",
}  # fmt: skip


def check_resumed_config(out: Path, config: Config, allow: bool, main: bool = True) -> None:
    """On ``--resume``: settings that alter the run (data, batch size, learning rate, steps, ...)
    must match the run's ``train_config.json``; with ``allow`` they may differ, and the earlier
    file is kept as ``train_config.until_<checkpoint>.json``."""
    import shutil

    from dalle.training.checkpoint import latest_checkpoint

    path = out / "train_config.json"
    if not path.is_file():
        return
    saved, now = type(config).load(path).to_dict(), config.to_dict()
    changed = [k for k in now if saved.get(k) != now[k] and k not in HARMLESS_CHANGES]
    if not changed:
        return
    listing = ", ".join(
        f"--{k.replace('_', '-')} {saved.get(k)!r} (now {now[k]!r})" for k in changed
    )  # fmt: skip
    if not allow:
        raise ValueError(
            f"{out} was trained with other settings: {listing}. Resume with the run's settings, "
            "or pass --allow-changes to continue with these"
        )
    last = latest_checkpoint(out)
    if main and last is not None:
        shutil.copy(path, out / f"train_config.until_{last.name}.json")


def run_trainer(
    trainer, args, config, model_config, out: Path, desc: str, postfix, init=None
) -> Path | None:
    """Resume if asked, else (or with no checkpoint yet) call ``init()`` if given; save the
    configs, train under a progress bar showing ``postfix(stats)``; export the model
    (``trainer.export()``, on the main process) and return where: when the run reached its last
    step, or when ``--stop-at`` stopped it before (the model so far, to evaluate mid-run; the
    final export replaces it)."""
    from tqdm.auto import tqdm

    main = trainer.accelerator.is_main_process
    if args.resume:
        check_resumed_config(out, config, getattr(args, "allow_changes", False), main)
    if args.resume and not trainer.resume():
        print(f"no checkpoint in {out}: starting from step 0")
    if init is not None and trainer.step == 0:
        init()
    if main:
        config.save(out / "train_config.json")
        model_config.save(out / "model_config.json")
    bar = tqdm(total=config.steps, initial=trainer.step, desc=desc, unit="step", disable=not main)

    def on_step(stats) -> None:
        bar.update(1)
        bar.set_postfix(postfix(stats))

    def on_validation(record: dict) -> None:
        losses = ", ".join(f"{k[4:]} {v:.4f}" for k, v in record.items() if k.startswith("val_"))
        bar.write(f"step {record['step']}: validation {losses}")

    start = time.perf_counter()
    trainer.train(on_step, stop_at=args.stop_at, on_validation=on_validation)
    bar.close()
    if trainer.skipped.count:
        print(trainer.skipped.summary())
    seconds = time.perf_counter() - start
    if not main:
        return None
    folder = trainer.export()
    if trainer.step < config.steps:
        print(f"stopped at step {trainer.step} of {config.steps}; the model so far: {folder}; "
              "continue with --resume")  # fmt: skip
        return folder
    print(f"trained {trainer.step} steps in {seconds:.0f} s; model: {folder}")
    return folder
