"""The bcywinski loop variant, checked against a hand-written CYW loop on a tiny checkpoint in its layout.

The oracle (``tests/bcywinski_reference.py``) shares no code with codi-probe's model, loader or engine.
Every known loader mistake is a control that must change the outputs, so that agreement means something.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys

import pytest
import torch

from bcywinski_reference import MARKER, cyw_loop, load_reference
from codi_probe.checkpoint import CheckpointError, save_checkpoint
from codi_probe.data.loaders import fixtures_dir
from codi_probe.engine import CodiEngine, Record
from codi_probe.loading import load_codi
from codi_probe.tolerance import tokens_agree, tolerance
from codi_probe.variants import BCYWINSKI, OFFICIAL, VARIANTS, variant

QUESTIONS = [
    "A team starts with 3 members. They recruit 5 new members.  How many people are there now?",
    "Janet has 16 eggs. She eats 3. How many are left? Output only the answer and nothing else.",
    "  Hi ",
]


@pytest.fixture(scope="module")
def cyw(cyw_checkpoint):
    return cyw_checkpoint


@pytest.fixture(scope="module")
def reference(cyw):
    codi, prj, tok = load_reference(*cyw)
    return {q: cyw_loop(codi, prj, tok, q) for q in QUESTIONS}


@pytest.fixture(scope="module")
def loaded(cyw):
    ckpt, base = cyw
    return load_codi(ckpt, base=base)


def test_variant_table():
    assert set(VARIANTS) == {"official", "bcywinski"} and variant("bcywinski") is BCYWINSKI
    assert OFFICIAL.after_question == () and BCYWINSKI.after_question == ("eos",)
    assert "<|bocot|>" in BCYWINSKI.describe() and "as given" in BCYWINSKI.describe()
    with pytest.raises(ValueError, match="unknown loop variant 'cyw'.*known: official, bcywinski"):
        variant("cyw")


def test_detected_and_loaded_with_every_assumption_named(cyw, loaded):
    ckpt, _ = cyw
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    m = loaded
    assert m.config.variant == "bcywinski" and m.variant is BCYWINSKI
    assert (m.special.pad, m.special.bot, m.special.eot) == (tok.pad_token_id, tok.convert_tokens_to_ids("<|bocot|>"),
                                                            tok.convert_tokens_to_ids("<|eocot|>"))
    assert m.special.eos == (tok.eos_token_id,) and m.vocab_size == len(tok)
    assert m.config.lora_alpha == 32 and m.config.answer_format == "{}" and m.config.num_latent == 6
    fp = m.fingerprint()
    assert fp["variant"] == "bcywinski" and fp["lora_alpha_assumed"]
    assert set(fp["assumed"]) == {"variant", "lora_alpha", "num_latent", "prj"}  # the base config was given
    assert "tokenizer" in fp["assumed"]["variant"]
    assert not (ckpt / MARKER).exists()


def test_storage_dtype_kept_natively_and_fp32_on_request(cyw, loaded):
    ckpt, base = cyw
    native = load_codi(ckpt, base=base, dtype="native")
    assert native.dtype_mix() == {"bfloat16": len(native.state_dict())}
    assert loaded.dtype_mix() == {"float32": len(loaded.state_dict())}
    # fp32 is an exact upcast of the stored bf16 weights
    assert all(torch.equal(a.float(), b) for a, b in zip(native.state_dict().values(), loaded.state_dict().values()))


def _same_tokens(ids, run, which: str) -> bool:
    """Token for token, as the suite compares greedy tokens: exactly, a genuine tie in the oracle's logits
    (a top-two gap within the fp32 logit tolerance, decided by round-off) excepted (codi_probe.tolerance)."""
    ref_ids, logits = (run[0], run.lens_logits) if which == "lens" else (run[1], run.answer_logits)
    return tokens_agree(ids, ref_ids, logits, tolerance(torch.float32)).agree


def test_engine_reproduces_the_cyw_loop_token_for_token(loaded, reference):
    """Batched (left-padded, exact positions) against each question alone in the oracle: logit-lens top-1 at
    P0..P6 and greedy answer ids token for token, the latent states within the fp32 tolerance."""
    engine = CodiEngine(loaded)
    trace = engine.run(QUESTIONS, record=Record(sites=()), max_new_tokens=10)
    tol = tolerance(torch.float32)
    for r, q in enumerate(QUESTIONS):
        run = reference[q]
        assert _same_tokens(engine.logits(trace.latent_pre[r]).argmax(-1).tolist(), run, "lens")
        assert _same_tokens(trace.answer_ids[r], run, "answer")
        assert tol.close(trace.latent_pre[r], run[2]), tol.deviation(trace.latent_pre[r], run[2])


def test_question_is_fed_exactly_as_given_then_eos(loaded):
    engine = CodiEngine(loaded)
    tok = loaded.tokenizer
    q = QUESTIONS[2]
    assert engine.encode([q]) == [tok(q)["input_ids"] + [tok.eos_token_id]]
    official = CodiEngine(load_codi("tiny-random-gpt2"))
    assert official.encode([q]) == [tok("Hi")["input_ids"]]  # the official loop normalises, appends nothing


@pytest.mark.parametrize("mistake", ["prj_ln_at_index_4", "greedy_over_every_id", "fp16_on_cpu", "alpha_16",
                                     "five_latents", "no_prj", "official_prompt"])
def test_every_known_loader_mistake_changes_the_outputs(cyw, reference, mistake):
    """The controls: each mistake of the community loaders (and the CYW loader's own defaults) moves the
    oracle's outputs, so the agreement above would catch an engine that made it."""
    ckpt, base = cyw
    kw, load_kw = {}, {}
    if mistake == "prj_ln_at_index_4":
        load_kw = {"ln_at_index_4": True}
    elif mistake == "fp16_on_cpu":
        load_kw = {"dtype": torch.float16}
    elif mistake == "alpha_16":
        load_kw = {"alpha": 16}
    else:
        kw = {"greedy_over_every_id": {"full_vocab": True}, "five_latents": {"num_latent": 5},
              "no_prj": {"use_prj": False}, "official_prompt": {"eos_in_prompt": False}}[mistake]
    codi, prj, tok = load_reference(ckpt, base, **load_kw)
    if mistake == "fp16_on_cpu":  # bf16 is the stored numerics; fp16 rounds differently
        bf = load_reference(ckpt, base, dtype=torch.bfloat16)
        moved = max(float((cyw_loop(codi, prj, tok, q)[2] - cyw_loop(*bf, q)[2]).abs().max()) for q in QUESTIONS)
        assert moved > tolerance(torch.float32).atol * 10
        return
    outs = {q: cyw_loop(codi, prj, tok, q, **kw) for q in QUESTIONS}
    assert any(outs[q][:2] != reference[q][:2] for q in QUESTIONS)
    if mistake == "greedy_over_every_id":
        assert all(set(outs[q][1]) == {tok.convert_tokens_to_ids("<|eocot|>")} for q in QUESTIONS)


def test_prj_layernorm_under_another_name_is_refused(cyw, tmp_path):
    """The strict=False mistake cannot happen here: a file whose LayerNorm is not ``prj.ln`` is refused."""
    ckpt, base = cyw
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    sd = torch.load(bad / "pytorch_model.bin", weights_only=True)
    sd = {k.replace("prj.ln.", "prj.4."): v for k, v in sd.items()}
    torch.save(sd, bad / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"missing: prj\.ln\.weight.*unexpected: prj\.4\.") as info:
        load_codi(bad, base=base)
    assert "\n" not in str(info.value)


def test_training_args_are_never_unpickled(cyw):
    """Loading, info and run never open ``training_args.bin``; the trap does bite when unpickled (the
    planted bug), so its silence means something."""
    ckpt, base = cyw
    from codi_probe.cli import main

    assert main(["info", str(ckpt), "--base", str(base)]) == 0
    assert main(["run", str(ckpt), "--base", str(base), "--question", "Hi", "--max-new-tokens", "2"]) == 0
    assert not (ckpt / MARKER).exists()
    try:
        with open(ckpt / "training_args.bin", "rb") as f:
            pickle.load(f)  # noqa: S301 - the planted bug: what a loader must never do
        assert (ckpt / MARKER).exists()
    finally:
        (ckpt / MARKER).unlink(missing_ok=True)


def test_special_ids_come_from_the_checkpoint_tokenizer_not_the_base(cyw, tmp_path):
    """A base directory with its own tokenizer (a real Llama-3.2-1B-Instruct download has one) does not
    replace the checkpoint's, which defines BOT/EOT."""
    ckpt, base = cyw
    base_tok = tmp_path / "base"
    shutil.copytree(base, base_tok)
    for f in (fixtures_dir() / "tokenizers" / "gpt2").iterdir():
        shutil.copy(f, base_tok / f.name)
    m = load_codi(ckpt, base=base_tok)
    assert m.tokenizer.convert_tokens_to_ids("<|eocot|>") == m.special.eot


def test_embedding_and_tokenizer_sizes_must_agree(cyw, tmp_path):
    ckpt, base = cyw
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(bad))
    tok.add_special_tokens({"additional_special_tokens": ["<|bocot|>", "<|eocot|>", "<|extra|>"]})
    tok.save_pretrained(str(bad))
    with pytest.raises(CheckpointError, match="50260 rows but the checkpoint's tokenizer has 50261"):
        load_codi(bad, base=base)


def test_round_trip_keeps_the_variant(loaded, tmp_path):
    path = save_checkpoint(loaded, tmp_path / "rt")
    assert (path.parent / "tokenizer.json").is_file()
    sidecar = json.loads((path.parent / "codi_config.json").read_text())
    assert sidecar["variant"] == "bcywinski" and sidecar["tokenizer"] is None
    again = load_codi(path.parent)
    assert again.variant is BCYWINSKI and again.special == loaded.special
    assert again.weights_sha256() == loaded.weights_sha256()
    a = CodiEngine(again).run(QUESTIONS[:2], max_new_tokens=6)
    b = CodiEngine(loaded).run(QUESTIONS[:2], max_new_tokens=6)
    assert a.answer_ids == b.answer_ids


def test_cli_run_json_matches_the_reference(cyw, reference, capsys):
    ckpt, base = cyw
    from codi_probe.cli import main

    args = ["run", str(ckpt), "--base", str(base), "--json", "--max-new-tokens", "10"]
    for q in QUESTIONS:
        args += ["--question", q]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["variant"] == "bcywinski"
    for res, q in zip(out["results"], QUESTIONS):
        assert res["question"] == q
        assert _same_tokens([lat["top"][0]["id"] for lat in res["latents"]], reference[q], "lens")
        assert _same_tokens(res["answer_token_ids"], reference[q], "answer")


def test_info_names_the_variant_and_the_assumptions(cyw, capsys):
    ckpt, base = cyw
    from codi_probe.cli import main

    assert main(["info", str(ckpt), "--base", str(base)]) == 0
    text = capsys.readouterr().out
    assert "loop variant   bcywinski: prompt = question (as given) + eos + <|bocot|>; EOT = <|eocot|>" in text
    for name in ("variant", "lora_alpha", "num_latent", "prj"):
        assert f"assumed        {name}: " in text


def test_problem_sets_carry_the_variant_suffix(loaded):
    from codi_probe.experiments.problems import family_problems, for_variant

    gsm = for_variant(family_problems("gsm8k", 3), loaded)
    assert all(p.question.endswith("? Output only the answer and nothing else.") or
               p.question.endswith(" Output only the answer and nothing else.") for p in gsm)
    assert gsm.filters[-1]["filter"] == "variant_prompt" and gsm.filters[-1]["changed"] == 3
    cyw = family_problems("cyw", 3)
    assert [p.question for p in for_variant(cyw, loaded)] == [p.question for p in cyw]
    official = load_codi("tiny-random-gpt2")
    assert for_variant(gsm, official) is gsm


def test_invariants_pass_on_the_variant(cyw, tmp_path):
    """Acceptance: ``pytest hypotheses --codi-model CKPT --codi-base BASE -m invariant`` passes."""
    ckpt, base = cyw
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "codi_probe.hypotheses", "-m", "invariant",
                           "-q", "-p", "no:cacheprovider", f"--codi-model={ckpt}", f"--codi-base={base}",
                           f"--codi-report={report}"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["model"]["variant"] == "bcywinski"
    assert data["summary"]["claims"] >= 20 and not data["summary"].get("errors")
