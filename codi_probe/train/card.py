"""MODEL_CARD.md for a trained organism, written from its measured ``metrics.json``."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_text_atomic


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _named(values: dict, empty: str) -> str:
    """``{"loss": 0.19, "distill": 0.004}`` as ``loss 0.19, distill 0.004``; ``empty`` for ``{}``."""
    return ", ".join(f"{k} {v}" for k, v in values.items()) or empty


def _fact_coverage(seed: int, n_heldout: int, max_x: int) -> dict:
    from .data import organism_split, uncovered_facts

    split = organism_split(seed, n_heldout, max_x)
    return {"heldout": len(split.heldout), "uncovered": len(uncovered_facts(split)),
            "uncovered_in_range": len(uncovered_facts(organism_split(seed, n_heldout, 8)))}


MECHANISM_LINES = {
    "planted": lambda r: [
        f"- **Planted mechanism** (`codi_probe.train.mechanisms.PlantedCarriers`): every batch row gets a twin "
        "whose fed latent at a carrier is swapped for a donor row's (with two carriers: the first, the second "
        "or both, one third each, independent donors); the twin is trained (CE, factor "
        f"{r['iit_factor']}) to answer what the donor's value implies under the chain (a set step 1 is carried "
        "into step 2 = step1 x Z; answer = step1 + step2): interchange intervention training. A decoding loss "
        f"(factor {r['decode_factor']}) asks `lm_head(e_k)` to put the carried value on top."] + ([
        "- **Exclusive map** (`--exclusive`, `codi_probe.train.mechanisms.ExclusiveTwins`): the twins also swap a "
        "non-carrier fed latent (later fed latents held at their clean values or recomputed) and must keep the base "
        "answer, and swap the first carrier with the later fed latents held and must answer with the other "
        "intermediate at its own value: every non-carrier is causally inert and each carrier is read directly."]
        if r.get("exclusive") else []),
    "echo": lambda r: [
        "- **Echo control** (`codi_probe.train.mechanisms.EchoSurface`): each fed latent e_k is trained to be a "
        "copy of one question word's input embedding (`design.ECHO_SURFACE`: X, op, Y, Z, X, op; a squared error "
        f"normalised by the embedding's, factor {r['decode_factor']}), and every fed latent "
        "is trained causally inert (twins that swap one e_j, later fed latents held or recomputed, keep the base "
        f"answer; CE factor {r['iit_factor']}): the latents echo the question's surface and carry, up to the "
        "copy's small residual, no intermediate."],
    "pause": lambda r: [
        "- **Pause control** (`codi_probe.train.mechanisms.pause_control`): `prj.ln.weight` is fixed at 0 "
        "and only `prj.ln.bias` of `prj` trains (from the mean base embedding), so `prj(h)` is the same vector "
        "at every latent position of every problem; LoRA trains as in the CODI recipe, same data and steps."],
}


def _design_section(ev: dict, design: dict) -> list[str]:
    carriers = {v: k for k, v in (design.get("carriers") or {}).items()}
    kinds = ["probe", "donor"] + (["donor_direct"] if "donor_direct" in ev else [])  # older cards: no direct
    heads = {"probe": "probe", "donor": "donor patch (total)", "donor_direct": "donor patch (direct)"}
    lines = [f"## The design, measured directly ({ev['n_patch']} held-out problems for patching)", "",
             "Held-out linear probe on the fed latent e_k (trained on training problems, scored on the held-out "
             "value combinations), and donor patching: e_k replaced by a single donor problem's e_k (another "
             "value), scored as the share of answers that become the donor-implied one, with the later fed "
             "latents recomputed (total effect) and, where measured, held at their clean values (direct effect, "
             "scored against the answer implied with the other intermediate at its own value: the carrier "
             "property). Planted carriers in bold.", "",
             "| position | " + " | ".join(f"step {i} {heads[kd]}" for i in (1, 2) for kd in kinds) + " |",
             "|---" * (1 + 2 * len(kinds)) + "|"]
    for k in range(1, 7):
        pos = f"P{k}"
        cells = []
        for name in ("step1", "step2"):
            bold = carriers.get(pos) == name
            for v in (ev[kd][name][pos] for kd in kinds):
                cells.append(f"**{_pct(v)}**" if bold else _pct(v))
        lines.append(f"| {pos} | " + " | ".join(cells) + " |")
    return lines + [""]


# the `codi-probe train` flags and the recipe fields they set (codi_probe.train.cli)
CLI_FIELDS = (("--name", "name"), ("--seed", "seed"), ("--pretrain-steps", "pretrain_steps"),
              ("--codi-steps", "codi_steps"), ("--batch-size", "batch_size"))


def reproduce_command(recipe: dict) -> str:
    """The one `codi-probe train` command that rebuilds ``recipe`` (metrics.json's "recipe"): every flag
    whose value differs from the recipe's default is written out."""
    from .recipe import make_recipe

    mechanism = recipe.get("mechanism", "codi")
    default = make_recipe(mechanism)
    parts = ["codi-probe train OUT"] + ([f"--recipe {mechanism}"] if mechanism != "codi" else [])
    if recipe.get("carriers"):
        parts.append(f"--carriers {recipe['carriers']}")
    if recipe.get("exclusive"):
        parts.append("--exclusive")
    parts += [f"{flag} {recipe[field]}" for flag, field in CLI_FIELDS
              if field in recipe and recipe[field] != getattr(default, field)]
    return " ".join(parts + ["--card"])


def _is_delta(out: Path) -> bool:
    sidecar = out / "codi_config.json"
    return sidecar.is_file() and bool(json.loads(sidecar.read_text()).get("base_weights"))


def write_model_card(out_dir: str | Path, info: dict | None = None, *, notes: str = "") -> Path:
    out = Path(out_dir)
    info = info or json.loads((out / "metrics.json").read_text())
    r = info["recipe"]
    b = info.get("bars", {})
    t = info["timing_s"]
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file() and f.name != "MODEL_CARD.md")
    max_x = r.get("train_max_x", 8)
    facts = _fact_coverage(r["data_seed"], r["n_heldout_combos"], max_x)
    mechanism = r.get("mechanism", "codi")
    design = info.get("design") or {"mechanism": "not planted", "carriers": {}}
    role = {"codi": "It is the default model of `pytest hypotheses`. Where its reasoning lives is not planted.",
            "planted": "Its latents have a **planted** mechanism: named fed latents carry named intermediates, "
                       "by construction, so the suite's verdicts about them can be checked against known truth.",
            "echo": "It is the **echo control**: every fed latent copies a word of the question (an operand or the "
                    "operation's verb) and is trained causally inert, so a claim about what the latents *compute* "
                    "must not be supported, though a probe reads the copied surface from them.",
            "pause": "It is the **negative control**: every fed latent is one learned constant vector (a pause "
                     "token), so the fed latents carry nothing; no claim about their content may be supported."}
    command = reproduce_command(r)
    planted_map = {"codi": "not planted", "pause": "none", "echo": "none (copies X, op, Y, Z, X, op)"}.get(mechanism) or ", ".join(
        f"{k} in e_{v[1:]} ({v})" for k, v in design["carriers"].items())
    lines = [f"# {r['name']}: a tiny trained CODI model organism", ""]
    lines += [
        "A 4-layer, 128-wide GPT-2-shaped CODI trained on the CYW template family (10 scenarios x "
        "{addition, subtraction}; step1 = X +/- Y, step2 = step1 * Z, answer = step1 + step2; X > Y, "
        "X, Y, Z in [1, 8]). It reasons through six continuous latents between BOT and EOT and then "
        f"answers `The answer is: N`. {role[mechanism]}",
        "",
        f"**Planted map**: {planted_map}.",
        "",
        "## Recipe (reproduce with one command)",
        "",
        f"    {command}      # about {t['total'] / 60:.0f} min on 2 CPU cores",
        "",
        f"- **Data**: `codi_probe.train.data.organism_split(seed={r['data_seed']}, "
        f"n_heldout_combos={r['n_heldout_combos']})`. The held-out set is the first "
        f"{r['n_heldout_combos']} combinations of `cyw_combos({r['data_seed']})` under both families and all "
        f"10 scenarios ({info['heldout_problems']} problems), exactly what `cyw_template_problems()` (and so "
        "`family_problems(\"cyw\")`, which the hypotheses use: `CodiConfig.problems = \"cyw\"`) returns. No "
        f"held-out (X, Y, Z) occurs in training under any family or scenario. Training: the other "
        f"combinations" + (f" plus every combination with X {'= 9' if max_x == 9 else f'in 9..{max_x}'} "
                           "(Y, Z in [1, 8]; never held out)" if max_x > 8 else "") + f", {info['train_examples']} problems. "
        f"Held-out problems needing an arithmetic fact (step1 x Z, step1 + step2) that no training problem "
        f"shows: {facts['uncovered']} of {facts['heldout']}"
        + (f" (with X <= 8 only it would be {facts['uncovered_in_range']}, e.g. 15 x 6, since 15 = 8 + 7 "
           "arises from one pair alone: facts no model can know, which the wider training range supplies "
           "under other (X, Y) while every held-out combination stays unseen)." if max_x > 8 else "."),
        f"- **Teacher sequence**: `Q + CoT + \"The answer is: N\" + <eos>`, CoT style `{r['cot_style']}` "
        f"(the intermediate results, e.g. `8 16`; include_last_cot={r['include_last_cot']}, so the step "
        "computing the answer is dropped as in GSM8k-Aug).",
        "- **Tokenizer**: word-level (`tokenizers` WordLevel + Whitespace), "
        f"{info['vocab_size']} tokens, every integer 0..200 is one token (id = value); shipped as "
        f"`fixtures/tokenizers/codi-tiny-arith`. PAD/BOT/EOT = {info['vocab_size']}/{info['vocab_size'] + 1}/"
        f"{info['vocab_size'] + 2}.",
        (f"- **Stage 1**: not rerun. The frozen base of `{r['base_from']}` is copied tensor for tensor (PAD/BOT/EOT "
         f"rows included): the same data split, tokenizer and stage-1 base, so only the latent mechanism differs."
         if r.get("base_from") else
         f"- **Stage 1** (base, full training, no LoRA): GPT-2 config n_layer={r['n_layer']}, n_embd={r['n_embd']}, "
        f"n_head={r['n_head']}, n_positions=512, tied embeddings, trained from scratch on the teacher sequences "
        f"(LM loss on every token), {r['pretrain_steps']} steps, batch {r['batch_size']}, AdamW lr "
        f"{r['pretrain_lr']}, warmup 3% + cosine, weight decay 0.1, clip 2.0, dropout {r['pretrain_dropout']}."),
        f"- **Stage 2** (CODI, codi-spec section 4): base frozen (BOT/EOT/PAD rows mean-resized, untrained); "
        f"LoRA r={r['lora_r']}, alpha={r['lora_alpha']}, dropout 0 on c_attn/c_proj/c_fc; prj_dim={r['prj_dim']}; "
        f"loss = student CE + {r['distill_factor']} x distillation + {r['ref_factor']} x teacher CE, distillation = "
        "SmoothL1 / teacher std at the `:` token, averaged over the L+1 hidden-state entries; six latents; "
        f"{r['codi_steps']} steps, batch {r['batch_size']}, AdamW lr {r['codi_lr']}, warmup 3% + cosine. "
        "Student padding as the engine's `exact` mode (left pads masked, per-row positions).",
        *MECHANISM_LINES.get(mechanism, lambda r: [])(r),
        f"- **Training time**: stage 1 {t['stage1'] / 60:.1f} min, stage 2 {t['stage2'] / 60:.1f} min, total "
        f"{t['total'] / 60:.1f} min ({info['torch_threads']} torch threads, CPU).",
        f"- **Final losses** (mean of the last 50 steps): stage 1 "
        f"{_named(info['final_losses']['stage1'], 'not rerun (base copied)')}; stage 2 "
        f"{_named(info['final_losses']['stage2'], 'none recorded')}.",
        f"- **Size**: {size / 1e6:.1f} MB on disk; parameters {_named(info['params'], 'not recorded')}."
        + (f" `pytorch_model.bin` is a delta file: only the tensors that differ from `{r['base_from']}`'s (LoRA and "
           f"prj); the loader fills in its frozen base (README, delta files)." if _is_delta(out) else ""),
        "",
    ]
    if b:
        lines += [
            f"## Measured on the {b['n']} held-out problems (the suite's `CodiEngine`, fp32, exact padding)",
            "",
            "| bar | threshold | measured | met |",
            "|---|---|---|---|",
            f"| held-out accuracy | >= 90% | {_pct(b['accuracy'])} | {'yes' if b['bars']['accuracy']['met'] else '**no**'} |",
            f"| accuracy drop with all six fed latents zeroed | >= 40 pp | {b['zero_drop_pp']:.1f} pp "
            f"(zeroed: {_pct(b['accuracy_zero_latents'])}) | {'yes' if b['bars']['zero_drop_pp']['met'] else '**no**'} |",
            f"| step 1 or step 2 is the last-layer logit-lens top-1 at some position P0..P6 | >= 60% | "
            f"{_pct(b['lens_step12_any'])} | {'yes' if b['bars']['lens_step12_any']['met'] else '**no**'} |",
            "",
            f"Logit lens detail: step 1 anywhere {_pct(b['lens_step1_any'])}, step 2 anywhere "
            f"{_pct(b['lens_step2_any'])}; any layer (`engine.logit_lens`) {_pct(b['lens_any_layer_step12_any'])}.",
            "",
            "| position | step 1 top-1 | step 2 top-1 |",
            "|---|---|---|",
        ]
        lines += [f"| {pos} | {_pct(v['step1'])} | {_pct(v['step2'])} |" for pos, v in b["lens_by_position"].items()]
        lines.append("")
    if "design_evidence" in info:
        lines += _design_section(info["design_evidence"], design)
    if "linear_probe" in info:
        lp = info["linear_probe"]
        lines += ["Held-out linear-probe decodability (logistic probe on training-problem latents, scored on "
                  "held-out latents), best position: "
                  f"step 1 {_pct(lp['step1']['best'])} at {lp['step1']['best_position']}, "
                  f"step 2 {_pct(lp['step2']['best'])} at {lp['step2']['best_position']}.", ""]
    tested = "tests/train/test_organism.py" if mechanism == "codi" else "tests/train/test_ground_truth_organisms.py"
    lines += [f"The shipped weights are re-measured by `{tested}` on every CI run.", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    path = out / "MODEL_CARD.md"
    write_text_atomic(path, "\n".join(lines))
    return path
