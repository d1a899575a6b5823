"""Training data for CODI: problem splits, the official sequence layout and a compact tokenizer.

Sequences follow codi-spec 4.2 (``remove_eos=True``):

- teacher ``Q + CoT + "The answer is: N" + EOS`` (right-padded; labels mask Q),
- student encoder ``Q + BOT`` (left-padded, with a mask),
- student decoder ``EOT + "The answer is: N" + EOS`` (right-padded; labels = ids, pads -100).

Each piece is tokenized on its own, as in the official ``preprocess``. The distilled position is the
token that predicts the first answer token: the last token of ``"The answer is:"`` (codi-spec 4.2,
GPT-2 rule: match index + length - 1).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..data import Problem, ProblemSet
from ..engine.loop import normalize_question
from ..data.templates import CYW_FAMILIES, CYW_SCENARIOS, cyw_combos, cyw_problem, cyw_template_problems

ANSWER_PREFIX = "The answer is:"
EOS_TOKEN = "<eos>"
UNK_TOKEN = "[UNK]"
MAX_NUMBER = 200  # every integer 0..MAX_NUMBER is one token, so the logit lens can name it
COT_STYLES = ("numbers", "annotations")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def cot_text(problem: Problem, style: str = "numbers", include_last_cot: bool = False) -> str:
    """The teacher's chain of thought for a CYW problem (intermediates step1, step2, answer).

    ``numbers``: the intermediate results only, e.g. ``"8 16"``. ``annotations``: GSM8k-Aug calculator
    steps, e.g. ``"<<5+3=8>> <<8*2=16>>"``. As in the official GSM8k-Aug recipe
    (``include_last_cot=False``) the last step, the one that computes the answer, is dropped.
    """
    m = problem.meta
    s1, s2, ans = (int(v) for v in problem.intermediates)
    if style == "numbers":
        steps = [str(s1), str(s2), str(ans)]
    elif style == "annotations":
        op = "+" if problem.operation == "add" else "-"
        steps = [f"<<{m['X']}{op}{m['Y']}={s1}>>", f"<<{s1}*{m['Z']}={s2}>>", f"<<{s1}+{s2}={ans}>>"]
    else:
        raise ValueError(f"unknown CoT style {style!r}: use one of {', '.join(COT_STYLES)}")
    return " ".join(steps if include_last_cot else steps[:-1])


def answer_text(value: float) -> str:
    return f"{ANSWER_PREFIX} {_fmt(value)}"


# ----------------------------------------------------------------------------- problem split
@dataclass(frozen=True)
class Split:
    train: ProblemSet
    heldout: ProblemSet


def organism_split(seed: int = 42, n_heldout_combos: int = 50, train_max_x: int = 9) -> Split:
    """CYW problems (10 scenarios x {addition, subtraction}, X > Y, Z in [1, 8]) split by value
    combination: the held-out combinations are exactly the first ``n_heldout_combos`` of
    ``cyw_combos(seed)`` (X, Y, Z in [1, 8]), i.e. the problems ``cyw_template_problems(
    prompts_per_template=n, seed=seed)`` returns (the set ``family_problems("cyw")`` samples for the
    hypotheses). No (X, Y, Z) of the held-out set occurs in training, under either family or any scenario.

    Training holds the other in-range combinations plus, with ``train_max_x`` > 8, the combinations with
    X in 9..train_max_x (Y in [1, 8], Y < X; Z in [1, 8]), which never occur in the held-out set. They
    exist so that every multiplication fact ``step1 x Z`` (and every sum ``step1 + step2``) a held-out
    problem needs is seen in training under some other (X, Y): with X <= 8 alone, sums such as 15 = 8 + 7
    arise from one pair only, so holding that combination out would leave a fact no model can know
    (``uncovered_facts`` counts them)."""
    if train_max_x < 8:
        raise ValueError(f"train_max_x must be >= 8 (the held-out range), got {train_max_x}")
    combos = cyw_combos(seed)
    held = set(combos[:n_heldout_combos])
    extra = [(x, y, z) for x in range(9, train_max_x + 1) for y in range(1, 9) for z in range(1, 9) if x > y]
    train = [cyw_problem(t, fam, x, y, z, i, seed)
             for fam, t, (i, (x, y, z)) in itertools.product(CYW_FAMILIES, range(len(CYW_SCENARIOS)),
                                                             enumerate(combos + extra))
             if (x, y, z) not in held]
    heldout = cyw_template_problems(prompts_per_template=n_heldout_combos, seed=seed)
    return Split(ProblemSet(train, name=f"cyw-train(seed={seed},max_x={train_max_x})", source="generated"),
                 heldout)


def uncovered_facts(split: Split) -> list[str]:
    """Ids of held-out problems whose arithmetic facts (``step1 x Z = step2``, ``step1 + step2 = answer``)
    never occur in the training problems: no model can be expected to know them."""
    def facts(p: Problem) -> tuple[tuple, tuple]:
        s1, s2, _ = (int(v) for v in p.intermediates)
        return (s1, p.meta["Z"]), (s1, s2)

    seen_mul, seen_add = set(), set()
    for p in split.train:
        mul, add = facts(p)
        seen_mul.add(mul)
        seen_add.add(add)
    return [p.id for p in split.heldout if facts(p)[0] not in seen_mul or facts(p)[1] not in seen_add]


# ----------------------------------------------------------------------------- tokenizer
def tokenizer_words(problems: Sequence[Problem]) -> list[str]:
    """Every word-level token of the questions, CoTs and answers (numbers 0..MAX_NUMBER always)."""
    from tokenizers.pre_tokenizers import Whitespace

    pre = Whitespace()
    words: set[str] = set(str(n) for n in range(MAX_NUMBER + 1))
    texts = [ANSWER_PREFIX] + [normalize_question(p.question) for p in problems]
    texts += [cot_text(p, s) for p in problems[:1] for s in COT_STYLES]
    texts += ["<<1+1=2>> <<1-1=0>> <<1*1=1>>"]
    for text in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    return sorted(words, key=lambda w: (not w.isdigit(), int(w) if w.isdigit() else 0, w))


def build_tokenizer(problems: Sequence[Problem], out_dir: str | Path) -> Path:
    """A word-level tokenizer (``tokenizers`` WordLevel + Whitespace pre-tokenizer) saved as
    ``tokenizer.json`` + ``tokenizer_config.json``; loads with ``codi_probe.loading.load_tokenizer``.

    Ids: numbers 0..MAX_NUMBER first (id == value), then words, then ``[UNK]`` and ``<eos>``. It has no
    pad token: ``attach_tokenizer`` adds ``[PAD]`` as id V, the CODI PAD id."""
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    words = tokenizer_words(problems) + [UNK_TOKEN, EOS_TOKEN]
    vocab = {w: i for i, w in enumerate(words)}
    tk = Tokenizer(WordLevel(vocab, unk_token=UNK_TOKEN))
    tk.pre_tokenizer = Whitespace()
    tk.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins with spaces, tidies " ." / " ?"
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token=UNK_TOKEN, eos_token=EOS_TOKEN,
                                   model_max_length=512)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    for extra in ("special_tokens_map.json",):
        if (out / extra).exists():
            (out / extra).unlink()
    # a class name every transformers version (4.x and 5.x) resolves
    config = {"eos_token": EOS_TOKEN, "model_max_length": 512, "tokenizer_class": "PreTrainedTokenizerFast",
              "unk_token": UNK_TOKEN}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def tokenizer_vocab(tok_dir: str | Path) -> dict[str, int]:
    return json.loads((Path(tok_dir) / "tokenizer.json").read_text())["model"]["vocab"]


# ----------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class Example:
    """Token ids of one problem in the three CODI sequences."""

    question: list[int]
    cot: list[int]
    answer: list[int]  # "The answer is: N" + EOS
    teacher_pos: int  # index in the teacher sequence of the token predicting the first answer token
    student_pos: int  # same, in the student decoder sequence (index 0 = EOT)


def find_answer_position(ids: Sequence[int], prefix_ids: Sequence[int]) -> int:
    """codi-spec 4.2 for GPT-2-style tokenizers: index of the unique match of ``prefix_ids`` plus its
    length (the first answer token), then -1: the token whose next-token prediction is the answer."""
    n = len(prefix_ids)
    hits = [i for i in range(len(ids) - n + 1) if list(ids[i:i + n]) == list(prefix_ids)]
    if len(hits) != 1:
        raise ValueError(f"expected one match of the answer prefix, found {len(hits)}")
    return hits[0] + n - 1


def encode_examples(tok, problems: Sequence[Problem], eos_id: int, cot_style: str = "numbers",
                    include_last_cot: bool = False) -> list[Example]:
    prefix = tok(ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
    out = []
    for p in problems:
        q = tok(normalize_question(p.question), add_special_tokens=False)["input_ids"]
        c = tok(cot_text(p, cot_style, include_last_cot), add_special_tokens=False)["input_ids"]
        a = tok(answer_text(p.answer), add_special_tokens=False)["input_ids"] + [eos_id]
        teacher = q + c + a
        out.append(Example(q, c, a, find_answer_position(teacher, prefix), find_answer_position([-1] + a, prefix)))
    return out


@dataclass
class Batch:
    teacher_ids: torch.Tensor  # [B, Lt] right-padded with PAD
    teacher_labels: torch.Tensor  # [B, Lt] -100 on Q and pads
    teacher_pos: torch.Tensor  # [B]
    encoder_ids: torch.Tensor  # [B, Le] Q + BOT, left-padded with PAD
    encoder_mask: torch.Tensor  # [B, Le]
    decoder_ids: torch.Tensor  # [B, Ld] EOT + answer + EOS, right-padded with PAD
    decoder_labels: torch.Tensor  # [B, Ld]
    student_pos: torch.Tensor  # [B]

    def to(self, device) -> "Batch":
        return Batch(**{k: v.to(device) for k, v in vars(self).items()})


def collate(examples: Sequence[Example], *, pad: int, bot: int, eot: int) -> Batch:
    b = len(examples)
    teacher = [e.question + e.cot + e.answer for e in examples]
    lt = max(map(len, teacher))
    t_ids = torch.full((b, lt), pad, dtype=torch.long)
    t_lab = torch.full((b, lt), -100, dtype=torch.long)
    enc = [e.question + [bot] for e in examples]
    le = max(map(len, enc))
    e_ids = torch.full((b, le), pad, dtype=torch.long)
    e_mask = torch.zeros((b, le), dtype=torch.long)
    dec = [[eot] + e.answer for e in examples]
    ld = max(map(len, dec))
    d_ids = torch.full((b, ld), pad, dtype=torch.long)
    d_lab = torch.full((b, ld), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        t = teacher[i]
        t_ids[i, :len(t)] = torch.tensor(t)
        t_lab[i, len(e.question):len(t)] = torch.tensor(t[len(e.question):])
        e_ids[i, le - len(enc[i]):] = torch.tensor(enc[i])
        e_mask[i, le - len(enc[i]):] = 1
        d_ids[i, :len(dec[i])] = torch.tensor(dec[i])
        d_lab[i, :len(dec[i])] = torch.tensor(dec[i])
    return Batch(t_ids, t_lab, torch.tensor([e.teacher_pos for e in examples]), e_ids, e_mask, d_ids, d_lab,
                 torch.tensor([e.student_pos for e in examples]))


def lm_batch(examples: Sequence[Example], *, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage-1 (base pretraining) batch: the teacher sequence, right-padded; loss on every real token."""
    seqs = [e.question + e.cot + e.answer for e in examples]
    n = max(map(len, seqs))
    ids = torch.full((len(seqs), n), pad, dtype=torch.long)
    labels = torch.full((len(seqs), n), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        labels[i, :len(s)] = torch.tensor(s)
    return ids, labels
