"""``codi-probe train``: run the organism recipe from the command line (argument parsing stays
torch-free; the CLI's error handling turns ValueError/FileNotFoundError into one line, exit 2)."""

from __future__ import annotations

import argparse


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output directory (pytorch_model.bin, codi_config.json, metrics.json)")
    p.add_argument("--recipe", choices=("codi", "planted", "pause", "echo"), default="codi",
                   help="codi: the CODI objective (codi-tiny-arith, not planted); planted: named fed latents carry "
                        "named intermediates (interchange training, codi-tiny-planted); pause: every fed latent is "
                        "one learned constant (negative control, codi-tiny-pause); echo: every fed latent copies a "
                        "question word (X op Y Z X op) and is causally inert (surface control, codi-tiny-echo). "
                        "planted, pause and echo reuse codi-tiny-arith's stage-1 base")
    p.add_argument("--carriers", help="planted only: the carrier map, e.g. step1=P2,step2=P4 (the default); "
                                      "P_k is the fed latent e_k")
    p.add_argument("--exclusive", action="store_true",
                   help="planted only: also train every non-carrier fed latent to be causally inert for the answer "
                        "and the carriers to be read directly, so every (intermediate, P_k) site's direct effect is "
                        "known")
    p.add_argument("--name", help="the organism's name in its codi_config.json and card (default: the recipe's)")
    p.add_argument("--work", help="directory for resumable training state and loss logs (default: OUT/work)")
    p.add_argument("--seed", type=int, help="training seed (default: the recipe's)")
    p.add_argument("--pretrain-steps", type=int, help="stage-1 steps (default: the recipe's)")
    p.add_argument("--codi-steps", type=int, help="stage-2 steps (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="batch size of both stages (default: the recipe's)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when present, else cpu")
    p.add_argument("--no-eval", action="store_true", help="skip measuring the bars on held-out problems")
    p.add_argument("--card", action="store_true", help="also write MODEL_CARD.md from the measured numbers")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def recipe_from_args(args):
    """The ``Recipe`` the parsed ``codi-probe train`` arguments ask for (validated, nothing trained)."""
    from dataclasses import replace

    from .recipe import make_recipe

    recipe = make_recipe(args.recipe, carriers=args.carriers, exclusive=args.exclusive or None)
    overrides = {"seed": args.seed, "pretrain_steps": args.pretrain_steps, "codi_steps": args.codi_steps,
                 "batch_size": args.batch_size, "name": args.name}
    for key, value in overrides.items():
        if value is not None:
            if key != "name" and value <= 0 and key != "seed":
                raise ValueError(f"--{key.replace('_', '-')} must be positive, got {value}")
            recipe = replace(recipe, **{key: value})
    return recipe


def run_train(args) -> int:
    import json

    from .recipe import train_organism

    recipe = recipe_from_args(args)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
    info = train_organism(args.out, args.work, recipe, progress=not args.quiet, evaluate=not args.no_eval,
                          device=args.device)
    if args.card:
        from .card import write_model_card

        write_model_card(args.out, info)
    summary = {"out": args.out, "timing_s": info["timing_s"]}
    if "bars" in info:
        summary["bars"] = {k: v for k, v in info["bars"]["bars"].items()}
    print(json.dumps(summary))
    return 0
