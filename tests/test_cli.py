"""The codi-probe command line: info and run."""

import json

from codi_probe.checkpoint import save_checkpoint
from codi_probe.cli import main
from codi_probe.loading import load_codi


def test_info_on_tiny_models(capsys):
    for name in ("tiny-random-gpt2", "tiny-random-llama"):
        assert main(["info", name]) == 0
        out = capsys.readouterr().out
        assert "BOT 50258" in out and "LoRA" in out and "weights sha256" in out


def test_info_on_an_official_format_file(tmp_path, capsys):
    model = load_codi("tiny-random-llama").set_precision("official")
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


def test_expect_pins_a_reports_empirical_verdicts(tmp_path, capsys):
    from codi_probe.plugin.expectations import parse_profile

    claims = [{"id": "IMP-01[P5]", "kind": "empirical", "verdict": "refuted"},
              {"id": "ACC-03", "kind": "empirical", "verdict": "inconclusive"},
              {"id": "SAN-01", "kind": "invariant", "verdict": "supported"}]
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"model": {"name": "my \"model\""}, "claims": claims}))
    out = tmp_path / "p.toml"
    assert main(["expect", str(report), "--out", str(out), "--description", "retrained"]) == 0
    profile = parse_profile(out, "option")
    assert profile.claims == {"ACC-03": "inconclusive", "IMP-01[P5]": "refuted"} and profile.default == "record"
    report.write_text(json.dumps({"claims": claims[2:]}))
    assert main(["expect", str(report)]) == 2
    assert "no empirical claim" in capsys.readouterr().err
