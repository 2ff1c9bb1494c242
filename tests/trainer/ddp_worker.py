"""Run under torchrun: `potion train` on every rank, then each rank writes a hash of its trainable weights."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import trainer.run
from trainer.config import load_config

models = []
real_load = trainer.run.load_model


def capture(cfg, hf_dir):
    model = real_load(cfg, hf_dir)
    models.append(model)
    return model


trainer.run.load_model = capture
cfg = load_config(sys.argv[1])
run_dir = trainer.run.train(cfg, progress=False)
digest = hashlib.sha256()
for name, p in sorted(models[0].named_parameters()):
    if p.requires_grad:
        digest.update(name.encode() + p.detach().cpu().numpy().tobytes())
rank = int(os.environ["RANK"])
import bitsandbytes as bnb  # noqa: E402
import torch.distributed as dist  # noqa: E402

four_bit = {str(p.dtype) for p in models[0].parameters() if isinstance(p, bnb.nn.Params4bit)}
out = {
    "rank": rank,
    "world": dist.get_world_size(),
    "backend": dist.get_backend(),
    "sha": digest.hexdigest(),
    "four_bit_storage": sorted(four_bit),  # the dtype the 4-bit weights are stored in
}
(Path(sys.argv[2]) / f"rank-{rank}.json").write_text(json.dumps(out))
