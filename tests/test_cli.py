"""The codi-probe command line: info and run."""

import json

import pytest

from codi_probe.checkpoint import save_checkpoint
from codi_probe.cli import main
from codi_probe.data.loaders import fixtures_dir
from codi_probe.loading import load_codi


def test_info_on_tiny_models(capsys):
    for name in ("tiny-random-gpt2", "tiny-random-llama"):
        assert main(["info", name]) == 0
        out = capsys.readouterr().out
        assert "BOT 50258" in out and "LoRA" in out and "weights sha256" in out


def test_info_on_an_official_format_file(tmp_path, capsys):
    model = load_codi("tiny-random-llama").set_precision("mixed")
    path = save_checkpoint(model, tmp_path / "pytorch_model.bin", sidecar=False)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(model.config.base))
    assert main(["info", str(path), "--base", str(base), "--json"]) == 0
    fp = json.loads(capsys.readouterr().out)
    assert fp["architecture"] == "llama" and fp["dtype_mix"] == model.dtype_mix()
    assert fp["params"] == model.param_counts() and len(fp["file_sha256"]) == 64


def test_run_json_prints_exactly_one_object(capsys):
    assert main(["run", "tiny-random-gpt2", "--question", "What is 7 plus 8?", "--question", "2+2?",
                 "--max-new-tokens", "3", "--top-k", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["question"] for r in doc["results"]] == ["What is 7 plus 8?", "2+2?"]
    for r in doc["results"]:
        assert [lat["position"] for lat in r["latents"]] == [f"P{k}" for k in range(7)]
        assert all(len(lat["top"]) == 2 for lat in r["latents"])
        assert len(r["answer_token_ids"]) <= 3 and isinstance(r["answer_text"], str)


def test_expect_drafts_a_profile_from_a_report(tmp_path, capsys):
    from codi_probe.plugin.expectations import parse_profile

    claims = [{"id": "IMP-01[P5]", "kind": "empirical", "verdict": "refuted"},
              {"id": "ACC-03", "kind": "empirical", "verdict": "inconclusive"},
              {"id": "CARRY-PATCH[step1@P2]", "kind": "empirical", "verdict": "refuted"},
              {"id": "SAN-01", "kind": "invariant", "verdict": "supported"}]
    design = {"mechanism": "planted", "carriers": {"step1": "P2"}}
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"status": "complete", "model": {"name": "my \"model\""}, "claims": claims,
                                  "expectations": {"design": design}, "created": "2026-11-30T09:00:00Z"}))
    out = tmp_path / "p.toml"
    assert main(["expect", str(report), "--out", str(out), "--description", "retrained"]) == 0
    profile = parse_profile(out, "option")
    # the planted truth comes from the design, not from the (wrong) measurement; the rest are snapshots
    assert profile.claims == {"ACC-03": "inconclusive", "IMP-01[P5]": "refuted", "CARRY-PATCH[step1@P2]": "supported",
                              "CARRY-DECODE[step1@P2]": "supported", "NEW-08": "refuted|inconclusive|invalid"} \
        and profile.default == "record"
    assert profile.why["CARRY-PATCH[step1@P2]"].startswith("planted:")
    assert profile.why["ACC-03"].startswith("snapshot: measured inconclusive in the run of 2026-11-30")
    report.write_text(json.dumps({"status": "complete", "claims": claims[3:]}))
    assert main(["expect", str(report)]) == 2
    assert "no empirical claim" in capsys.readouterr().err
    report.write_text(json.dumps({"status": "interrupted", "claims": claims}))
    assert main(["expect", str(report)]) == 2
    assert "not 'complete'" in capsys.readouterr().err
    assert main(["expect", str(tmp_path)]) == 2  # a directory: one line, no traceback
    assert "not a report file" in capsys.readouterr().err


def test_expect_design_prints_the_profile_a_design_decides(capsys):
    assert main(["expect", "--design", "tiny-random-gpt2"]) == 0
    out = capsys.readouterr().out
    assert '"CARRY-DECODE[step1@P1]" = {verdict = ["refuted", "inconclusive", "invalid"], why = "random weights' in out


@pytest.mark.parametrize("arch", ["tiny-random-gpt2", "tiny-random-llama"])
def test_run_reproduces_a_reference_with_given_alpha_and_the_base_tokenizer(arch, tmp_path, capsys):
    """An official-format checkpoint trained with LoRA alpha 16 (not stored in the file), a base directory
    holding config.json and the tokenizer files, no --tokenizer: `run --lora-alpha 16 --json` reproduces
    the hand-written reference loop token for token (logit-lens top-1 at P0..P6 and the greedy answer);
    without --lora-alpha the run says that alpha was assumed, and its numbers differ."""
    import shutil

    import torch

    from codi_probe.loading import load_tokenizer
    from codi_probe.model import attach_tokenizer
    from codi_probe.tiny import build_tiny
    from codi_reference import reference_loop

    model = build_tiny(arch, lora_alpha=16)
    ckpt = save_checkpoint(model, tmp_path / "ckpt", sidecar=False)
    base = tmp_path / "base"
    shutil.copytree(fixtures_dir() / "tokenizers" / "gpt2", base)
    (base / "config.json").write_text(json.dumps(model.config.base))
    attach_tokenizer(model, load_tokenizer("gpt2"))
    questions = ["A team starts with 3 members. They recruit 5 new members. How many now?", "What is 7 plus 8?"]

    def run(*extra):
        args = ["run", str(ckpt.parent), "--base", str(base), "--json", "--max-new-tokens", "8", "--top-k", "1"]
        assert main(args + [x for q in questions for x in ("--question", q)] + list(extra)) == 0
        return json.loads(capsys.readouterr().out)

    given = run("--lora-alpha", "16")
    assert given["model"]["lora_alpha"] == 16 and given["model"]["lora_alpha_assumed"] is False
    for q, res in zip(questions, given["results"]):
        ref_h, ref_tokens = reference_loop(model, q, max_new_tokens=8)
        with torch.no_grad():
            ref_top = model.lm_head(ref_h).argmax(-1).tolist()
        assert [lat["top"][0]["id"] for lat in res["latents"]] == ref_top
        assert res["answer_token_ids"] == ref_tokens
    assumed = run()
    assert assumed["model"]["lora_alpha"] == 32 and assumed["model"]["lora_alpha_assumed"] is True
    probs = lambda doc: [lat["top"][0]["prob"] for r in doc["results"] for lat in r["latents"]]
    assert max(abs(a - b) / b for a, b in zip(probs(given), probs(assumed))) > 1e-2  # relative: top-1 probs are small


def test_info_says_when_alpha_is_assumed(tmp_path, capsys):
    model = load_codi("tiny-random-gpt2")
    path = save_checkpoint(model, tmp_path / "pytorch_model.bin", sidecar=False)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(model.config.base))
    assert main(["info", str(path), "--base", str(base)]) == 0
    assert "ASSUMED" in capsys.readouterr().out
    assert main(["info", str(path), "--base", str(base), "--lora-alpha", "2"]) == 0
    assert "ASSUMED" not in capsys.readouterr().out


@pytest.mark.parametrize("alpha", ["0", "-1"])
def test_a_lora_alpha_below_one_is_a_one_line_error(alpha, capsys):
    """Defect: `--lora-alpha 0` was replaced by the default 32 (and reported as given), `-1` was accepted."""
    assert main(["info", "codi-tiny-arith", "--lora-alpha", alpha]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--lora-alpha {alpha}: must be a positive integer" in err


def test_a_bad_model_spec_prints_exactly_one_line(tmp_path):
    """Defect: every load printed library notices (peft's fan_in_fan_out warning, transformers' mean-resizing
    notice) before the one-line error. A subprocess, so that no earlier load has used up a print-once notice."""
    import subprocess
    import sys

    model = load_codi("tiny-random-llama")
    path = save_checkpoint(model, tmp_path / "pytorch_model.bin", sidecar=False)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(load_codi("tiny-random-gpt2").config.base))  # a LLaMA file, a GPT-2 base
    run = subprocess.run([sys.executable, "-m", "codi_probe.cli", "info", str(path), "--base", str(base)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("codi-probe: error: ") and "wrong base" in run.stderr, run.stderr


def test_a_question_beyond_the_position_limit_is_one_line(capsys):
    """Defect: a question longer than the model's positions crashed with a raw IndexError traceback."""
    assert main(["run", "tiny-random-gpt2", "--question", "seven " * 600, "--max-new-tokens", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "positions" in err and "has 512" in err


def test_version(capsys):
    from codi_probe import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"codi-probe {__version__}"


def test_an_output_path_under_a_file_is_one_line(tmp_path, capsys):
    """Defect: ``expect --design M --out afile/p.toml`` raised a FileExistsError traceback."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    assert main(["expect", "--design", "tiny-random-gpt2", "--out", str(blocker / "p.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("codi-probe: error: ") and "afile" in err


def test_help_names_each_commands_own_dtype_default(capsys):
    """Defect: ``info --help`` said fp32 was the default while info loads the file's own dtypes."""
    for command, default in (("info", "native"), ("run", "fp32")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"default {default}" in " ".join(capsys.readouterr().out.split())


def test_an_unknown_dtype_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["info", "tiny-random-gpt2", "--dtype", "fp64"])
    assert exit_.value.code == 2 and "invalid choice: 'fp64'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "env", "expected"), [
    (["--threads", "3"], {}, 3),
    ([], {"OMP_NUM_THREADS": "1"}, 1),
    ([], {}, None),  # this process's CPUs, not a fixed cap of 2
])
def test_info_threads_follow_the_shared_policy(argv, env, expected, monkeypatch, capsys):
    import torch

    from codi_probe.threads import cpu_count

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = torch.get_num_threads()
    try:
        assert main(["info", "tiny-random-gpt2", *argv]) == 0
        assert torch.get_num_threads() == (expected or cpu_count())
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()


def test_validate_rejects_a_power_outside_the_unit_interval(tmp_path, capsys):
    assert main(["validate", "--no-run", "--out", str(tmp_path), "--min-power", "1.5"]) == 2
    assert "--min-power 1.5" in capsys.readouterr().err
