"""The training loop: a few steps reduce the loss; an interrupted run resumes identically; the CLI."""

import json

import pytest
import torch



def _codi_loss_fn(model, examples):
    from codi_probe.train.data import collate
    from codi_probe.train.losses import codi_losses

    sp = model.special

    def fn(rows):
        return codi_losses(model, collate([examples[i] for i in rows], pad=sp.pad, bot=sp.bot, eot=sp.eot))

    return fn


def test_only_lora_and_prj_train_and_the_base_stays_frozen(make_tiny, examples, tmp_path):
    from codi_probe.train.loop import LoopConfig, train_loop

    model = make_tiny(seed=3)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n or n.startswith("prj.") for n in trainable)
    assert any(n.startswith("prj.") for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_loop(model, _codi_loss_fn(model, examples), len(examples),
               LoopConfig(steps=2, batch_size=8, lr=1e-2, checkpoint_every=100), tmp_path, progress=False)
    for n, p in model.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        assert changed == (n in trainable), n


def test_a_few_steps_reduce_the_loss(make_tiny, examples, tmp_path):
    from codi_probe.train.loop import LoopConfig, train_loop

    torch.manual_seed(0)
    model = make_tiny(seed=1)
    fixed = list(range(8))
    fn = _codi_loss_fn(model, [examples[i] for i in fixed])
    records = train_loop(model, fn, len(fixed), LoopConfig(steps=12, batch_size=8, lr=3e-2, warmup_ratio=0.0,
                                                           checkpoint_every=100), tmp_path, progress=False)
    first, tail = records[0], records[-3:]
    mean = lambda key: sum(r[key] for r in tail) / len(tail)
    assert mean("loss") < first["loss"] - 0.5  # 11.5 -> 10.8 on this random tiny CODI
    assert mean("ce_student") < first["ce_student"] and mean("ce_teacher") < first["ce_teacher"]
    assert mean("distill") < first["distill"]
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(12)) and log[-1]["loss"] == pytest.approx(records[-1]["loss"])


def test_resume_continues_identically(make_tiny, examples, tmp_path):
    from codi_probe.train.loop import LoopConfig, read_log, train_loop

    cfg = LoopConfig(steps=6, batch_size=8, lr=5e-3, checkpoint_every=2, seed=5)

    def run(work, stop_after=None):
        model = make_tiny(seed=2)  # a fresh process: rebuilt from scratch, state comes from the checkpoint
        train_loop(model, _codi_loss_fn(model, examples), len(examples), cfg, work, progress=False,
                   stop_after=stop_after)
        return model

    full = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=3)  # interrupted after step 3 (checkpoint at step 3)
    assert [r["step"] for r in read_log(tmp_path / "b")] == [0, 1, 2]
    resumed = run(tmp_path / "b")
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert [r["step"] for r in b] == list(range(6))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]  # bit-identical loss sequence
    elapsed = [r["elapsed_s"] for r in b]
    assert elapsed == sorted(elapsed) and elapsed[3] >= elapsed[2]  # cumulative across the resumed call
    for (n, p), (_, q) in zip(full.named_parameters(), resumed.named_parameters()):
        assert torch.equal(p, q), n


def test_resume_refuses_a_checkpoint_of_another_run(make_tiny, examples, tmp_path):
    from codi_probe.train.loop import LoopConfig, train_loop

    model = make_tiny(seed=2)
    fn = _codi_loss_fn(model, examples)
    train_loop(model, fn, len(examples), LoopConfig(steps=1, batch_size=4), tmp_path, progress=False)
    with pytest.raises(ValueError, match="different run"):
        train_loop(model, fn, len(examples), LoopConfig(steps=2, batch_size=4), tmp_path, progress=False)


def test_batches_and_schedule_are_pure_functions_of_the_step():
    from codi_probe.train.loop import LoopConfig, batch_indices, lr_at

    assert batch_indices(10, 4, 0, 2) == batch_indices(10, 4, 0, 2)
    epoch0 = batch_indices(10, 5, 0, 0) + batch_indices(10, 5, 0, 1)
    assert sorted(epoch0) == list(range(10))  # one epoch covers every example once
    cfg = LoopConfig(steps=100, lr=1.0, warmup_ratio=0.1)
    assert lr_at(cfg, 0) == pytest.approx(0.1) and lr_at(cfg, 9) == pytest.approx(1.0)
    assert lr_at(cfg, 99) < 0.01


def test_cli_train_bad_argument_is_one_line_exit_2(tmp_path, capsys):
    from codi_probe.cli import main

    assert main(["train", str(tmp_path / "out"), "--codi-steps", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("codi-probe: error:") and "--codi-steps" in err[0]
    assert not (tmp_path / "out").exists()


def test_cli_train_end_to_end_micro_run_loads_with_load_codi(tmp_path, capsys):
    from codi_probe.cli import main
    from codi_probe.engine import CodiEngine
    from codi_probe.loading import load_codi
    from codi_probe.train.loop import read_log

    out = tmp_path / "out"
    assert main(["train", str(out), "--pretrain-steps", "2", "--codi-steps", "2", "--batch-size", "4",
                 "--no-eval", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["timing_s"]) == {"stage1", "stage2", "total"}
    assert [r["step"] for r in read_log(out / "work" / "stage1")] == [0, 1]
    stage2 = read_log(out / "work" / "stage2")
    assert [r["step"] for r in stage2] == [0, 1] and {"ce_student", "distill", "ce_teacher"} <= set(stage2[0])
    model = load_codi(str(out))
    assert model.config.tokenizer == "codi-tiny-arith"  # (problems="cyw" is in the sidecar; load_codi drops it)
    assert model.special.pad == len(model.tokenizer) - 1 == 291  # [PAD] appended as id V
    trace = CodiEngine(model).run(["A team starts with 3 members. They recruit 1 new members."], max_new_tokens=3)
    assert trace.latent_pre.shape == (1, 7, 128)
