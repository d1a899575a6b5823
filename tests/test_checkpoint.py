"""Loading and saving the official checkpoint format, strictly, with one-line errors."""

import json
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from codi_probe.checkpoint import CheckpointError, read_state_dict, save_checkpoint
from codi_probe.loading import load_checkpoint, load_codi
from codi_probe.tiny import TINY_CONFIGS


def official_style_state_dict(name: str, seed: int = 7) -> dict:
    """Build a CODI exactly as the official code does, with plain HF + peft calls (no codi_probe code):
    base model, resize_token_embeddings(+3), get_peft_model with the official LoRA config, prj as a
    Sequential 0..3 plus ``ln``, bf16 base with fp32 adapters and prj, lm_head stored separately."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    base = dict(TINY_CONFIGS[name].base)
    cfg = AutoConfig.for_model(base.pop("model_type"), **base)
    lm = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    lm.resize_token_embeddings(cfg.vocab_size + 3)
    targets = ["c_attn", "c_proj", "c_fc"] if "gpt2" in name else [
        "q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]
    peft = get_peft_model(lm, LoraConfig(task_type="CAUSAL_LM", inference_mode=False, r=8, lora_alpha=2,
                                         lora_dropout=0.1, target_modules=targets, init_lora_weights=True))
    for n, p in peft.named_parameters():
        if "lora_B" in n:
            nn.init.normal_(p, std=0.05)
    d = cfg.hidden_size
    prj = nn.Sequential(nn.Dropout(0.0), nn.Linear(d, 64), nn.GELU(), nn.Linear(64, d))
    prj.add_module("ln", nn.LayerNorm(d))
    sd = {f"codi.{k}": v for k, v in peft.state_dict().items()}
    sd.update({f"prj.{k}": v for k, v in prj.state_dict().items()})
    head = "codi.base_model.model.lm_head.weight"
    sd[head] = sd[head].clone()
    return sd


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_official_built_checkpoint_loads_exactly(name, tmp_path):
    sd = official_style_state_dict(name)
    kinds = {str(v.dtype) for k, v in sd.items() if ".lora_" in k or k.startswith("prj.")}
    assert kinds == {"torch.float32"} and sd["codi.base_model.model.lm_head.weight"].dtype == torch.bfloat16
    torch.save(sd, tmp_path / "pytorch_model.bin")
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    (base_dir / "config.json").write_text(json.dumps(TINY_CONFIGS[name].base))
    model = load_checkpoint(tmp_path, base=base_dir, lora_alpha=2)
    loaded = model.state_dict()
    assert set(loaded) == set(sd)
    for k, v in sd.items():
        assert loaded[k].dtype == v.dtype, k
        assert torch.equal(loaded[k], v), k
    assert model.fingerprint()["file_sha256"] is not None


def test_lm_head_wins_over_embedding(tmp_path):
    sd = official_style_state_dict("tiny-random-gpt2")
    head = "codi.base_model.model.lm_head.weight"
    sd[head] = sd[head] + 1.0
    torch.save(sd, tmp_path / "pytorch_model.bin")
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    (base_dir / "config.json").write_text(json.dumps(TINY_CONFIGS["tiny-random-gpt2"].base))
    model = load_checkpoint(tmp_path, base=base_dir)
    assert torch.equal(model.embed.weight, sd[head])
    assert model.lm_head.weight is model.embed.weight


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
@pytest.mark.parametrize("fmt", ["pytorch_model.bin", "model.safetensors"])
def test_save_then_load_is_bit_exact(name, fmt, tmp_path):
    model = load_codi(name, dtype="fp32").set_precision("mixed")
    save_checkpoint(model, tmp_path / fmt)
    again = load_codi(tmp_path, dtype="native")
    a, b = model.state_dict(), again.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert again.config == model.config
    assert again.fingerprint()["sha256"] == model.fingerprint()["sha256"]


@pytest.mark.parametrize("fmt", ["pytorch_model.bin", "model.safetensors"])
def test_the_same_weights_save_to_the_same_bytes(fmt, tmp_path):
    """Defect: torch.save named the archive's folder after the random temporary file, so two saves of
    bit-identical weights (a reproduced training run) had different file sha256s."""
    from codi_probe.checkpoint import file_sha256

    model = load_codi("tiny-random-gpt2")
    first, second = save_checkpoint(model, tmp_path / "a" / fmt), save_checkpoint(model, tmp_path / "b" / fmt)
    assert file_sha256(first) == file_sha256(second)


@pytest.fixture(scope="module")
def gpt2_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "pytorch_model.bin"
    save_checkpoint(load_codi("tiny-random-gpt2"), path)
    return path


def _one_line_error(path, match, **kw):
    with pytest.raises(CheckpointError) as info:
        load_codi(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and match in msg, msg
    return msg


def test_missing_file(tmp_path):
    _one_line_error(tmp_path / "nope.bin", "no such checkpoint")
    _one_line_error(tmp_path, "no checkpoint in directory")


def test_truncated_file(gpt2_file, tmp_path):
    bad = tmp_path / "pytorch_model.bin"
    bad.write_bytes(gpt2_file.read_bytes()[:5000])
    _one_line_error(bad, "truncated or not a torch checkpoint")


def test_file_of_the_other_architecture(gpt2_file, tmp_path):
    base_dir = tmp_path / "llama_base"
    base_dir.mkdir()
    (base_dir / "config.json").write_text(json.dumps(TINY_CONFIGS["tiny-random-llama"].base))
    msg = _one_line_error(gpt2_file, "wrong base", base=base_dir)
    assert "gpt2 CODI but the base config is llama" in msg


def test_wrong_prj_dim(gpt2_file):
    msg = _one_line_error(gpt2_file, "wrong prj_dim", prj_dim=128)
    assert "prj.1.weight" in msg


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_non_tensor_object_is_refused(gpt2_file, tmp_path, capsys):
    sd = read_state_dict(gpt2_file)
    sd["extra"] = Evil()
    bad = tmp_path / "pytorch_model.bin"
    with open(bad, "wb") as f:
        pickle.dump(sd, f)
    torch.save(sd, bad)
    _one_line_error(bad, "refused: the pickle holds a non-tensor object")
    assert "pwned" not in capsys.readouterr().out


def test_bcywinski_variant_without_a_usable_tokenizer_is_a_one_line_error(gpt2_file, tmp_path):
    """The variant is detected from the tokenizer files and needs that tokenizer: a broken one is named."""
    folder = tmp_path / "bcy"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(gpt2_file.read_bytes())
    (folder / "tokenizer_config.json").write_text(json.dumps({"additional_special_tokens": ["<|bocot|>", "<|eocot|>"]}))
    _one_line_error(folder, "bcywinski variant's tokenizer")


def test_not_a_codi_checkpoint(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "x.bin")
    _one_line_error(tmp_path / "x.bin", "not a CODI checkpoint")


def test_cli_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "codi_probe.cli", "info", str(tmp_path / "missing.bin")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such checkpoint" in proc.stderr


def test_sidecar_fields_survive_a_round_trip(tmp_path):
    from dataclasses import replace

    model = load_codi("tiny-random-gpt2")
    model.config = replace(model.config, problems="cyw", answer_format="A: {}", name="custom")
    save_checkpoint(model, tmp_path)
    again = load_codi(tmp_path)
    assert (again.config.problems, again.config.answer_format, again.config.name) == ("cyw", "A: {}", "custom")


def test_a_bf16_checkpoint_saved_by_codi_probe_loads(tmp_path):
    """Defect: a bf16 checkpoint written by save_checkpoint was refused as "the bcywinski variant" (its
    prj and LoRA are bf16). codi-probe's own sidecar marks it as ours; a bare bf16 file is still refused."""
    model = load_codi("tiny-random-gpt2", dtype="bf16")
    path = save_checkpoint(model, tmp_path / "ours")
    loaded = load_codi(path.parent, dtype="native")
    assert set(loaded.dtype_mix()) == {"bfloat16"} and loaded.weights_sha256() == model.weights_sha256()
    bare = save_checkpoint(model, tmp_path / "bare", sidecar=False)
    with pytest.raises(CheckpointError, match="bcywinski"):
        load_codi(bare.parent)


def test_a_delta_file_holds_only_what_differs_from_its_shipped_base(tmp_path):
    """codi-tiny-pause over codi-tiny-arith's frozen base: the delta keeps LoRA and prj only, is a fraction
    of the full file, and loads back to the same tensors; the sidecar pins the base file's sha256."""
    model = load_codi("codi-tiny-pause")
    full = save_checkpoint(model, tmp_path / "full")
    delta = save_checkpoint(model, tmp_path / "delta", base_weights="codi-tiny-arith")
    keys = list(read_state_dict(delta))
    assert keys and all(".lora_" in k or k.startswith("prj.") for k in keys)
    assert delta.stat().st_size < 0.35 * full.stat().st_size
    back = load_codi(tmp_path / "delta")
    want = dict(model.state_dict())
    assert all(torch.equal(v, want[k]) for k, v in back.state_dict().items())
    sidecar = tmp_path / "delta" / "codi_config.json"
    cfg = json.loads(sidecar.read_text())
    assert cfg["base_weights"]["name"] == "codi-tiny-arith"
    cfg["base_weights"]["sha256"] = "0" * 64  # another base file than the one it was saved against
    sidecar.write_text(json.dumps(cfg))
    _one_line_error(tmp_path / "delta", "not the one it was saved against")
    cfg["base_weights"] = {"name": "../outside", "sha256": "0" * 64}
    sidecar.write_text(json.dumps(cfg))
    _one_line_error(tmp_path / "delta", "not a shipped model")
    cfg["base_weights"] = {"name": "no-such-organism", "sha256": "0" * 64}
    sidecar.write_text(json.dumps(cfg))
    _one_line_error(tmp_path / "delta", "a delta whose base is missing")
    cfg["base_weights"] = "codi-tiny-arith"  # not the {name, sha256} record
    sidecar.write_text(json.dumps(cfg))
    _one_line_error(tmp_path / "delta", "malformed base_weights")
