"""A small resumable training loop: AdamW, linear warmup + cosine decay, gradient clipping, a tqdm
progress bar, a JSONL loss log and atomic checkpoints that resume bit-identically.

Batches are a pure function of ``(seed, step)`` (epoch-wise seeded permutations), the learning rate a
pure function of ``step``, and the checkpoint holds the trainable tensors, the optimizer state and the
torch RNG state; so a run resumed from step ``s`` replays the same losses as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from ..atomic import torch_save_atomic

CHECKPOINT_FILE = "train_state.pt"
LOG_FILE = "log.jsonl"


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    warmup_ratio: float = 0.03
    weight_decay: float = 0.1
    max_grad_norm: float = 2.0
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 1


def lr_at(cfg: LoopConfig, step: int) -> float:
    """Linear warmup over ``warmup_ratio * steps``, then cosine decay to 0 (HF ``cosine`` schedule)."""
    warm = max(1, int(math.ceil(cfg.warmup_ratio * cfg.steps)))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Rows of batch ``step``: consecutive slices of per-epoch seeded permutations (wrapping)."""
    out: list[int] = []
    start = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        take = min(batch_size - len(out), n - offset)
        out.extend(perm[offset:offset + take].tolist())
    return out


def train_loop(module: torch.nn.Module, loss_fn: Callable[[list[int]], dict[str, torch.Tensor]], n_examples: int,
               cfg: LoopConfig, work_dir: str | Path, *, desc: str = "train", progress: bool = True,
               stop_after: int | None = None) -> list[dict]:
    """Train the parameters of ``module`` that require grad; resume from ``work_dir`` when it holds a
    checkpoint of the same configuration. ``loss_fn(rows)`` returns a dict with ``loss`` (and any
    other scalars to log). ``stop_after`` ends the call early at that step (for tests: an interrupted
    run). Returns the log records of this call."""
    from tqdm.auto import tqdm

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    params = [p for n, p in module.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires grad")
    decay = [p for n, p in zip(names, params) if p.ndim >= 2]
    no_decay = [p for n, p in zip(names, params) if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    start = 0
    offset = 0.0
    ckpt = work / CHECKPOINT_FILE
    log_path = work / LOG_FILE
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state["config"] != asdict(cfg) or state["names"] != names:
            raise ValueError(f"{ckpt}: checkpoint of a different run (config or trainable parameters differ)")
        with torch.no_grad():
            for n, p in zip(names, params):
                p.copy_(state["params"][n])
        opt.load_state_dict(state["optimizer"])  # moves the moments onto the parameters' device
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(state["cuda_rng"]))
        start = int(state["step"])
        if log_path.is_file():  # keep the log consistent with the checkpoint
            lines = [l for l in log_path.read_text().splitlines() if l and json.loads(l)["step"] < start]
            log_path.write_text("".join(l + "\n" for l in lines))
            if lines:  # elapsed_s counts the stage's whole training time across resumed calls
                offset = float(json.loads(lines[-1])["elapsed_s"])
    elif log_path.is_file():
        log_path.unlink()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    records: list[dict] = []
    module.train()
    t0 = time.time()
    bar = tqdm(range(start, end), desc=desc, initial=start, total=cfg.steps, disable=not progress,
               dynamic_ncols=True, mininterval=2.0)
    with open(log_path, "a") as log:
        for step in bar:
            lr = lr_at(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr
            rows = batch_indices(n_examples, cfg.batch_size, cfg.seed, step)
            losses = loss_fn(rows)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            rec = {"step": step, "lr": lr, "grad_norm": float(gnorm), "elapsed_s": round(offset + time.time() - t0, 3),
                   **{k: float(v.detach()) for k, v in losses.items()}}
            records.append(rec)
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                log.write(json.dumps(rec) + "\n")
                log.flush()
            bar.set_postfix(loss=f"{rec['loss']:.4f}", refresh=False)
            done = step + 1
            if done % cfg.checkpoint_every == 0 or done == end:
                torch_save_atomic(ckpt, {"step": done, "config": asdict(cfg), "names": names,
                                         "params": {n: p.detach().clone() for n, p in zip(names, params)},
                                         "optimizer": opt.state_dict(), "rng": torch.get_rng_state(),
                                         "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                                         else None})
    bar.close()
    module.eval()
    return records


def read_log(work_dir: str | Path) -> list[dict]:
    path = Path(work_dir) / LOG_FILE
    return [json.loads(l) for l in path.read_text().splitlines() if l] if path.is_file() else []
