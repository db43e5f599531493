"""The training loop shared by the transformer and CLIP: ``accelerate``, AdamW with warm-up and
cosine decay, an EMA of the weights, atomic checkpoints with exact resume, a metrics log.

Alone it is a plain CPU (or single GPU) loop; under ``accelerate launch`` or ``torchrun`` every
process reads the same global batch and trains on its slice, gradients are averaged, and only the
main process writes checkpoints, logs and samples.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from dalle.config import Config
from dalle.data.transforms import Augmentation
from dalle.training import checkpoint as ckpt
from dalle.training.ema import EMA
from dalle.training.metrics_log import MetricsLog
from dalle.training.schedules import cosine_anneal
from dalle.utils.device import default_device, use_bf16

logger = logging.getLogger(__name__)

VALIDATION_SEED = 7919  # validation's data order and draws: the same for every run


@dataclass(frozen=True)
class RunConfig(Config):
    """What every accelerated training run has; each stage's config adds its own fields."""

    data: str = "shapes"
    steps: int = 10000
    batch_size: int = 32  # global: split across processes
    lr: float = 1e-3
    lr_end: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 0.045  # on weight matrices only
    beta2: float = 0.96  # AdamW betas (0.9, beta2)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    bf16: bool | None = None  # autocast; None: where the machine has bf16 units (utils.device)
    tokenizer_vocab: int = 512  # when the run trains its own tokenizer
    tokenizer_captions: int = 50000  # captions read to train it
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 1000
    log_every: int = 10
    augment: Augmentation = Augmentation()  # random crop, rotation, noise, flips: none
    val_data: str | None = None  # validation data (a data spec, like data); None: none
    val_size: int = 256  # validation examples: the first ones (of a stream: whole batches)
    val_every: int = 0  # steps between validations; 0: at every checkpoint


def scheduled_lr(config: RunConfig, anchor: tuple[int, float] | None, step: int) -> float:
    """The learning rate at ``step``: linear warm-up to ``config.lr``, then a cosine to
    ``config.lr_end`` at ``config.steps``; from ``anchor`` = (step, lr) on, if given, the cosine
    starts again from that rate (see :meth:`AcceleratedTrainer.resume`)."""
    c = config
    if anchor is not None and step >= anchor[0]:
        return cosine_anneal(step - anchor[0], c.steps - anchor[0], anchor[1], c.lr_end)
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    return cosine_anneal(step - c.warmup_steps, c.steps - c.warmup_steps, c.lr, c.lr_end)


def rewarm_steps(config: RunConfig) -> int:
    """Steps over which the learning rate is warmed up again after a resume from a packed
    checkpoint (``checkpoint.pack_run``), whose optimizer starts afresh: twice the horizon of
    AdamW's second-moment average, 1 / (1 - beta2) steps (50 at the presets' 0.96), so that the
    full rate is not applied while the moments rest on a handful of gradients; at most the run's
    own warm-up."""
    if config.beta2 >= 1:
        return max(1, config.warmup_steps)
    return max(1, min(config.warmup_steps, round(2 / (1 - config.beta2))))


def make_accelerator(bf16: bool | None) -> Accelerator:
    """An ``Accelerator`` with bf16 autocast if asked (None: if the machine has bf16 units); on
    a machine without GPUs it runs on the CPU, so that ``torchrun`` or ``accelerate launch``
    with several processes trains data-parallel over gloo."""
    from accelerate.state import AcceleratorState

    on = use_bf16(bf16, default_device())
    # accelerate keeps one mixed-precision setting per process and refuses another: a second
    # trainer in the same process (a library user, a notebook, the tests) may want another one.
    # Forget it, keeping the process group (PartialState) as it is.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision="bf16" if on else "no", cpu=not torch.cuda.is_available())


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices; none on embeddings, biases, norms and scalars."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "emb" not in name else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class AcceleratedTrainer:
    """Subclasses give ``batches(start_step)``, ``train_step(batch)`` and ``sample()``, and
    ``export_name``, the folder of the run their model is exported to."""

    export_name = "model"

    def __init__(
        self,
        model: nn.Module,
        model_config: Config,
        config: RunConfig,
        run_dir: str | Path,
        accelerator: Accelerator | None = None,
    ) -> None:
        self.model_config, self.config = model_config, config
        self.run_dir = Path(run_dir)
        self.accelerator = accelerator or make_accelerator(config.bf16)
        self.ema = EMA(model, config.ema_decay)
        optimizer = torch.optim.AdamW(
            _param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, config.beta2)
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.generator = torch.Generator().manual_seed(config.seed)  # the loop's own randomness
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        self.step = 0
        self.data_position: int | None = None  # where the data reading resumes (see batches)
        # (step, lr): after a resume that changed the number of steps, the cosine goes on from
        # the learning rate the run had there, to lr_end at the new last step (no jump)
        self.lr_anchor: tuple[int, float] | None = None
        # (step, steps): after a resume from a packed checkpoint (a fresh optimizer), the rate
        # warms up again from that step over that many steps
        self.rewarm: tuple[int, int] | None = None
        # global batches of the validation data, as ``batches`` gives them (set by the caller)
        self.val_batches: list[Any] | None = None
        self._batches: Iterator[Any] | None = None

    # -- for subclasses -------------------------------------------------------------------------
    def batches(self, start_step: int, position: int | None = None) -> Iterator[Any]:
        """Global batches from batch ``start_step`` on; ``position``, if given, is the data
        position a checkpoint saved (the iterator's ``position`` attribute, where it has one:
        files skipped as unreadable move it past ``start_step * batch_size``)."""
        raise NotImplementedError

    def train_step(self, batch: Any) -> Any:
        """One optimizer step on a global batch; returns a dataclass of statistics."""
        raise NotImplementedError

    def sample(self) -> None:
        """Called on the main process every ``sample_every`` steps (sample grids, evaluations)."""

    def begin(self) -> None:
        """Called once before the first step of a new run (not on resume): e.g. statistics the
        model keeps as buffers, measured on the data."""

    def validation_losses(
        self, model: nn.Module, batch: Any, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """The losses of ``model`` (the EMA weights, in eval mode) on one global batch of the
        validation data, on this process's rows: what ``train_step`` computes, without what only
        training does (caption and embedding dropout, hard negatives, random crops), every
        random draw (noise, timesteps) taken from ``generator``."""
        raise NotImplementedError(f"{type(self).__name__} has no validation losses")

    def extra_state(self) -> dict[str, Any]:
        """JSON-able facts saved with every checkpoint and checked on resume (e.g. which frozen
        model the run depends on)."""
        return {}

    def state_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """Groups of tensors of the trainer's own state, saved with every checkpoint."""
        return {}

    def state_values(self) -> dict[str, Any]:
        """JSON-able values of the trainer's own state, saved with every checkpoint."""
        return {}

    def load_state(self, tensors: dict[str, dict[str, torch.Tensor]], values: dict) -> None:
        """Restore what ``state_tensors`` and ``state_values`` saved."""

    def export(self) -> Path:
        """The trained model, ready for use: the EMA weights in fp16 as ``OUT/<export_name>``
        (a folder ``from_pretrained`` reads). Every trainer exports through this."""
        directory = self.run_dir / self.export_name
        self.ema_model().save_pretrained(directory, dtype=torch.float16)
        return directory

    # -- shared ---------------------------------------------------------------------------------
    @property
    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def lr_at(self, step: int) -> float:
        lr = scheduled_lr(self.config, self.lr_anchor, step)
        if self.rewarm is not None and step >= self.rewarm[0]:
            lr *= min(1.0, (step - self.rewarm[0] + 1) / self.rewarm[1])
        return lr

    def ema_model(self) -> nn.Module:
        """A copy of the model holding the EMA weights, for sampling and saving."""
        model = self.ema.copy_to(type(self.unwrapped)(self.model_config))
        return model.to(self.accelerator.device).eval()

    def validate(self) -> dict[str, float]:
        """The EMA weights' mean losses over ``val_batches`` (weighted by their examples), named
        ``val_<loss>``. Every validation draws the same noise (a generator of a fixed seed), so
        two steps' figures differ by the weights alone. Runs on every process (the losses are
        averaged over them); each stage's loss runs under autocast as its training step does."""
        if not self.val_batches:
            raise ValueError("no validation batches")
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        sums: dict[str, float] = {}
        total = 0
        # the global RNG as it was (making the EMA copy initialises a model): validating leaves
        # the run's own draws where they were, so a run trains the same with or without it
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model = self.ema_model()
            for batch in self.val_batches:
                n = len(batch[-1])  # every stage's batches end with their captions
                total += n
                for name, loss in self.validation_losses(model, batch, generator).items():
                    mean = self.accelerator.reduce(loss.detach().float(), "mean").item()
                    sums[name] = sums.get(name, 0.0) + mean * n
        return {f"val_{k}": v / total for k, v in sums.items()}

    def local_range(self, n: int) -> slice:
        """Which rows of a global batch of ``n`` are this process's."""
        per = n // self.accelerator.num_processes
        return slice(
            self.accelerator.process_index * per, (self.accelerator.process_index + 1) * per
        )

    def local_slice(self, tensor: torch.Tensor) -> torch.Tensor:
        """This process's part of a global batch, on its device."""
        return tensor[self.local_range(tensor.shape[0])].to(self.accelerator.device)

    def optimize(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """Backward ``losses["loss"]``, clip, step, update the EMA; the losses averaged over
        processes."""
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(losses["loss"])
        if self.config.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.ema.update(self.unwrapped, self.step)
        self.step += 1
        return {k: self.accelerator.reduce(v.detach(), "mean").item() for k, v in losses.items()}

    def set_lr(self) -> float:
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def save_checkpoint(self) -> Path | None:
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return None
        return ckpt.save_training_checkpoint(
            self.run_dir, self.step, self.unwrapped, self.ema, self.optimizer.optimizer,
            self.generator, self.model_config, self.config, extra_tensors=self.state_tensors(),
            extra_state={**self.extra_state(), **self.state_values(),
                         "data_position": getattr(self._batches, "position", None),
                         "lr_anchor": list(self.lr_anchor) if self.lr_anchor else None,
                         "rewarm": list(self.rewarm) if self.rewarm else None,
                         "bf16": self.accelerator.mixed_precision == "bf16"},
        )  # fmt: skip

    def init_from(self, model: nn.Module) -> None:
        """Start from ``model``'s weights (fine-tuning) instead of a random initialisation: the
        model and its EMA both take them. Only before the first step; the configs must match."""
        if self.step != 0:
            raise ValueError(f"init_from is for a new run; this one is at step {self.step}")
        config = getattr(model, "config", None)
        if config != self.model_config:
            raise ValueError(
                f"the initial weights' config does not match the run's model config (run -> "
                f"weights: {self.model_config.changes(config)})"
            )
        self.unwrapped.load_state_dict(model.state_dict())
        self.ema = EMA(self.unwrapped, self.config.ema_decay)

    def resume(self) -> bool:
        """Load the newest checkpoint of the run folder; False if there is none."""
        found = ckpt.load_training_checkpoint(
            self.run_dir, self.unwrapped, self.ema, self.optimizer.optimizer, self.generator,
            self.model_config,
        )  # fmt: skip
        if found is None:
            return False
        path, tensors, state = found
        self._apply_optimizer_config()
        for key, value in self.extra_state().items():
            if key in state and state[key] != value:  # (a key missing: an older checkpoint)
                raise ValueError(
                    f"{path}: the run was made with {key} = {state[key]!r}, not {value!r}"
                )
        self.load_state(tensors, state)
        self.step = state["step"]
        self.data_position = state.get("data_position")
        self.lr_anchor = tuple(state["lr_anchor"]) if state.get("lr_anchor") else None  # type: ignore[assignment]
        self.rewarm = tuple(state["rewarm"]) if state.get("rewarm") else None  # type: ignore[assignment]
        if state.get(ckpt.PACKED):
            self.rewarm = (self.step, rewarm_steps(self.config))
            logger.info(
                "%s is packed (no optimizer moments): the optimizer starts afresh and the "
                "learning rate warms up to the schedule's over %d steps", path, self.rewarm[1],
            )  # fmt: skip
        self._rebase_schedule(state.get("train_config", {}))
        bf16 = self.accelerator.mixed_precision == "bf16"
        if "bf16" in state and state["bf16"] != bf16:
            logger.warning(
                "%s: the run trained %s until step %d and goes on %s (%s); pass --bf16 or "
                "--no-bf16 to choose", path, "in bf16" if state["bf16"] else "in fp32",
                self.step, "in bf16" if bf16 else "in fp32",
                "asked for" if self.config.bf16 is not None else "what this machine does best",
            )  # fmt: skip
        self.metrics.rewind(self.step)
        logger.info("resumed from %s at step %d", path, self.step)
        return True

    def _apply_optimizer_config(self) -> None:
        """The run's weight decay and beta2 over those a loaded optimizer state brought back (a
        resume with ``--allow-changes`` that changed them means them); the learning rate is set
        every step by the schedule."""
        c = self.config
        for group, decay in zip(self.optimizer.param_groups, (c.weight_decay, 0.0), strict=True):
            group["weight_decay"] = decay
            group["betas"] = (group["betas"][0], c.beta2)

    def _rebase_schedule(self, saved: dict) -> None:
        """After a resume with another number of steps (``--allow-changes --steps M``), anneal
        from the learning rate the saved schedule had at this step to ``lr_end`` at the new last
        step, instead of jumping to where a schedule of M steps would have been."""
        c = self.config
        if saved.get("steps", c.steps) == c.steps or self.step < c.warmup_steps:
            return
        old = replace(c, steps=saved["steps"])
        lr = scheduled_lr(old, self.lr_anchor, self.step)
        self.lr_anchor = (self.step, lr)
        logger.info(
            "steps %d -> %d: the learning rate anneals from %.3g at step %d to %.3g at step %d",
            saved["steps"], c.steps, lr, self.step, c.lr_end, c.steps,
        )  # fmt: skip

    def train(
        self,
        on_step: Callable[[Any], None] | None = None,
        stop_at: int | None = None,
        on_validation: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        """Train up to ``stop_at`` (default: the configured steps), checkpointing on the way;
        with ``val_batches``, validate every ``val_every`` steps (0: at each checkpoint) and at
        the last (``stop_at``), logging ``{"step", "val_...": ...}``, calling ``on_validation``."""
        c = self.config
        stop_at = c.steps if stop_at is None else min(stop_at, c.steps)
        if c.batch_size % self.accelerator.num_processes:
            raise ValueError(
                f"batch_size {c.batch_size} does not split over "
                f"{self.accelerator.num_processes} processes"
            )
        main = self.accelerator.is_main_process
        if self.step == 0:
            self.begin()
            if main:  # a run started afresh in this folder: no earlier lines carry over
                self.metrics.rewind(0)
        self.model.train()
        batches = self._batches = self.batches(self.step, self.data_position)
        start = time.perf_counter()
        while self.step < stop_at:
            stats = self.train_step(next(batches))
            if main and (self.step % c.log_every == 0 or self.step == stop_at):
                self.metrics.append(
                    {**asdict(stats), "time": round(time.perf_counter() - start, 3)}
                )
            if on_step is not None and main:
                on_step(stats)
            # the checkpoint first: samples or a validation that fail lose no training
            if self.step % c.checkpoint_every == 0 or self.step == stop_at:
                self.save_checkpoint()
            if main and (self.step % c.sample_every == 0 or self.step == c.steps):
                with torch.random.fork_rng(devices=[]):  # the run's draws stay where they were
                    self.sample()
            every = c.val_every or c.checkpoint_every
            if self.val_batches and (self.step % every == 0 or self.step == stop_at):
                record = {"step": self.step, **self.validate()}
                if main:
                    self.metrics.append(record)
                    if on_validation is not None:
                        on_validation(record)
        logger.info("trained to step %d in %.1f s", self.step, time.perf_counter() - start)
