"""transformers' Trainer with the two things it lacks: discriminative LR groups and the EWC penalty.

The loop, AdamW, warmup + cosine schedule, gradient accumulation, evaluation, checkpointing, RNG and data
position on resume, and DDP/FSDP are all the Trainer's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from trainer.config import TrainConfig
from trainer.ewc import EwcState
from trainer.groups import describe_groups, param_groups
from trainer.translate import compute_dtype, fsdp_arguments


class PotionTrainer(Trainer):
    """Trainer + LR groups (`lr_multipliers`) + optional EWC penalty, logged as `ewc_penalty`."""

    def __init__(
        self, *args: Any, lr_multipliers: dict[str, float], ewc: EwcState | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lr_multipliers = lr_multipliers
        self.ewc = ewc
        self._ewc_sum = 0.0
        self._ewc_n = 0
        self.groups_description = ""

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = param_groups(
                opt_model, self.args.learning_rate, self.lr_multipliers, weight_decay=self.args.weight_decay
            )
            self.groups_description = describe_groups(groups)
            if self.args.process_index == 0:
                print(self.groups_description)
            optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        if self.ewc is None or not model.training:
            return out
        loss, outputs = out if return_outputs else (out, None)
        penalty = self.ewc.penalty(model).to(loss.device)
        # With loss kwargs the Trainer does not divide by the accumulation steps: the penalty, added once
        # per micro-batch, is divided here so that each optimizer step carries it once.
        if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            penalty = penalty / self.args.gradient_accumulation_steps
        self._ewc_sum += float(penalty.detach())
        self._ewc_n += 1
        loss = loss + penalty
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.ewc is not None and "loss" in logs and self._ewc_n:
            scale = self.args.gradient_accumulation_steps if self.model_accepts_loss_kwargs else 1
            logs["ewc_penalty"] = self._ewc_sum * scale / self._ewc_n
            self._ewc_sum, self._ewc_n = 0.0, 0
        super().log(logs, start_time)


def training_arguments(
    cfg: TrainConfig, *, staging: Path, lr: float, steps: int, has_eval: bool
) -> TrainingArguments:
    """The Trainer's arguments for one stage of `cfg`."""
    dtype = compute_dtype(cfg)
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(staging),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=int(cfg.warmup_ratio * steps),
        max_steps=steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        logging_nan_inf_filter=False,  # a NaN must reach MetricsLog, not be averaged away
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=None,  # PublishCheckpoints keeps the last K
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        use_cpu=not cuda,
        report_to="none",
        disable_tqdm=True,  # RichProgress shows tokens/s too
        remove_unused_columns=False,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,
        **fsdp_arguments(cfg),
    )
