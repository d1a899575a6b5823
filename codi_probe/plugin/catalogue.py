"""The catalogue's session fixtures: the engine, the problem sets, the clean traces and the CCTA grid.

Part of the plugin, so that the shipped catalogue (``hypotheses/``, installed as ``codi_probe.hypotheses``)
and a researcher's own claim files in their own repository use the same ones. Each is lazy: a run that
asks for none builds none. Each process holds its own; the work behind the clean traces, the CCTA
grid and the mean ablation is done once for the whole run, divided between xdist workers by problem
chunk (:mod:`codi_probe.plugin.sharing`). The model (``codi_model``), the options and the ``claim``
recorder are in :mod:`codi_probe.plugin.fixtures`.

- ``codi_engine``: a :class:`~codi_probe.engine.CodiEngine` on the session's model (a tiny random model's
  with a short answer budget);
- ``codi_problems``/``codi_questions``/``clean_trace``: the invariants' few GSM8K problems and their traced run;
- ``empirical_n``: problems per empirical claim (the ``--codi-depth`` tier, or ``--codi-problems``);
- ``answer_problems``/``template_problems``: the model's problem family (answer-scored and templated);
- ``answer_attention_trace``/``template_trace``: their clean runs; ``ccta``: the corruption grid;
- ``answer_lens``/``template_lens``: the logit lens of those runs at P0..P6;
- ``mean_ablation``: the CCTA sites mean-ablated (with the grid's zero and resample: all three types).
"""

import pytest

class CodiProblemsWarning(UserWarning):
    """``--codi-problems`` asked for more problems than a problem set has (the set's size is the cap)."""


DEFAULT_PROBLEMS = 8  # invariants are exact checks: a few problems of mixed length suffice


def _chunk(n: int) -> int:
    """Problems per unit of shared work: about four units (two per worker of ``-n 2``), 8..32 problems each.
    Serial runs compute the same chunks, so a serial and a parallel run batch the same rows."""
    return min(32, max(8, -(-n // 4)))


def _shared_trace(pytestconfig, name, engine, problems, record, max_new_tokens):
    """The clean trace of ``problems``, computed in chunks once across the run's processes."""
    from codi_probe.experiments.common import engine_key
    from codi_probe.engine.trace_rows import from_problem_tensors, problem_tensors
    from codi_probe.plugin.sharing import shared_problems

    questions = [p.question for p in problems]
    key = {"record": repr(record), "max_new_tokens": max_new_tokens, **engine_key(engine, problems)}
    rows = shared_problems(pytestconfig, name, engine.model, key, [p.id for p in problems],
                           lambda idx: problem_tensors(engine.run([questions[i] for i in idx], record=record,
                                                                  max_new_tokens=max_new_tokens)), chunk=_chunk(len(problems)))
    return from_problem_tensors(engine, questions, rows)


@pytest.fixture(scope="session")
def codi_engine(pytestconfig, codi_model):
    """The engine of every claim; on a tiny random model with a short answer budget (``codi_probe.tiny``),
    recorded in the report's ``data.answer_budget`` (absent: each run's own ``max_new_tokens``)."""
    from codi_probe.engine import CodiEngine
    from codi_probe.plugin.metadata import add_session_metadata
    from codi_probe.tiny import answer_budget

    budget = answer_budget(codi_model)
    if budget is not None:
        add_session_metadata(pytestconfig, "answer_budget", budget, section="data")
    return CodiEngine(codi_model, answer_budget=budget)


@pytest.fixture(scope="session")
def codi_problems(pytestconfig):
    """The invariants' first ``DEFAULT_PROBLEMS`` GSM8K test problems in file order (no filtering). Exact
    checks: their count is their own, never ``--codi-problems`` (which sizes the empirical claims)."""
    from codi_probe.data import load_gsm8k
    from codi_probe.plugin.metadata import add_session_metadata

    n = DEFAULT_PROBLEMS
    problems = list(load_gsm8k("test"))[:n]
    add_session_metadata(pytestconfig, "invariant_problems",
                         {"source": "gsm8k/test", "n": len(problems), "ids": [p.id for p in problems]},
                         section="data")
    return problems


@pytest.fixture(scope="session")
def codi_questions(codi_problems):
    return [p.question for p in codi_problems]


@pytest.fixture(scope="session")
def clean_trace(pytestconfig, codi_engine, codi_problems):
    """One clean traced run of every problem (all module sites, attention), shared by the claims."""
    from codi_probe.engine import Record

    return _shared_trace(pytestconfig, "clean_trace", codi_engine, codi_problems,
                         Record(sites=("resid_post", "attn_out", "mlp_out"), attention=True), 8)


# Problems per empirical claim by --codi-depth. quick (the default run, ~90 s on 2 cores on the default
# model): 100, every claim's minimum except the equivalence claims (500: IMP-13, COR-03, PATCH-01, ACC-03's
# plateau), which it reports as "inconclusive (n below minimum)". full (~10 min): 520, every claim at its
# minimum; the margin covers claims that drop problems (PATCH-01 needs a group mate: 499 of 500 had one on
# codi-tiny-arith). --codi-problems overrides both.
TIERS = {"quick": 100, "full": 520}


@pytest.fixture(scope="session")
def empirical_n(pytestconfig, codi_options):
    from codi_probe.plugin.metadata import add_session_metadata

    n = codi_options.problems or TIERS[codi_options.depth]
    add_session_metadata(pytestconfig, "depth", {"tier": codi_options.depth, "problems": n}, section="data")
    return n


def _family_set(pytestconfig, model, key, family, n, seed):
    from codi_probe.experiments.problems import family_problems, for_variant, model_dir
    from codi_probe.plugin.metadata import add_session_metadata

    from codi_probe.vocabulary import unknown_words

    ps = for_variant(family_problems(family, n, seed=seed, model_dir=model_dir(model)), model)
    unknown = unknown_words(model.tokenizer, [p.question for p in ps])  # the report warns (plugin.report)
    if len(ps) < n:  # --codi-problems beyond the set: every problem it has, said once per set
        import warnings

        warnings.warn(f"--codi-problems {n} exceeds the {len(ps)} problems of the {family} set: "
                      f"{key} uses all {len(ps)}", CodiProblemsWarning, stacklevel=1)
    add_session_metadata(pytestconfig, key, {"family": family, "n": len(ps), "fingerprint": ps.fingerprint(),
                                             "filters": ps.filters, **({"unknown_words": unknown} if unknown else {})},
                         section="data")
    return ps


@pytest.fixture(scope="session")
def answer_problems(pytestconfig, codi_model, codi_options, empirical_n):
    """Problems with gold answers for answer-level claims (the model's family, else GSM8K test)."""
    from codi_probe.experiments.problems import model_families

    return _family_set(pytestconfig, codi_model, "answer_problems", model_families(codi_model)[0],
                       empirical_n, codi_options.seed)


@pytest.fixture(scope="session")
def template_problems(pytestconfig, codi_model, codi_options, empirical_n):
    """Problems with ground-truth intermediates (the model's family, else the CYW templates)."""
    from codi_probe.experiments.problems import model_families

    return _family_set(pytestconfig, codi_model, "template_problems", model_families(codi_model)[1],
                       empirical_n, codi_options.seed)


@pytest.fixture(scope="session")
def ccta(pytestconfig, codi_engine, answer_problems, codi_options):
    """The seeds' CCTA grid: 7 positions x 7 corruption methods at relative depth 0.5 (layer 8 of 16)."""
    from codi_probe.engine.positions import LATENT_POSITIONS
    from codi_probe.experiments.common import middle_layer
    from codi_probe.experiments.corruption import CorruptionResult, grid_chunk, grid_key, grid_methods
    from codi_probe.plugin.sharing import shared_problems

    ps, seed = list(answer_problems), codi_options.seed
    layer = middle_layer(codi_engine.model.n_layers)
    rows = shared_problems(pytestconfig, "ccta", codi_engine.model,
                           grid_key(codi_engine, ps, layer, "resid_post", LATENT_POSITIONS, seed, 16), [p.id for p in ps],
                           lambda idx: grid_chunk(codi_engine, ps, idx, layer=layer, seed=seed), chunk=_chunk(len(ps)))
    return CorruptionResult.from_problem_tensors(layer, LATENT_POSITIONS, grid_methods(seed), rows)


@pytest.fixture(scope="session")
def answer_attention_trace(pytestconfig, codi_engine, answer_problems):
    """Clean run of the answer problems with attention, shared by the attention and flow claims."""
    from codi_probe.engine import Record

    return _shared_trace(pytestconfig, "answer_attention_trace", codi_engine, answer_problems,
                         Record(sites=(), attention=True), 1)


@pytest.fixture(scope="session")
def template_trace(pytestconfig, codi_engine, template_problems):
    """Clean run of the template problems (latents and greedy answers), shared by lens and patching."""
    from codi_probe.engine import Record

    return _shared_trace(pytestconfig, "template_trace", codi_engine, template_problems,
                         Record(sites=("resid_post",), logits=False), 32)


@pytest.fixture(scope="session")
def template_lens(codi_engine, template_problems, template_trace):
    """The lens at P0..P6 of the template problems' clean run, with the probabilities of step1, step2 and
    the answer (:class:`~codi_probe.experiments.lens.LensReadout`)."""
    from codi_probe.experiments.lens import lens_readout

    ps = list(template_problems)
    return lens_readout(codi_engine, template_trace, {"step1": [p.intermediates[0] for p in ps],
                                                      "step2": [p.intermediates[1] for p in ps],
                                                      "answer": [p.answer for p in ps]})


@pytest.fixture(scope="session")
def answer_lens(codi_engine, answer_problems, answer_attention_trace):
    """The lens at P0..P6 of the answer problems' clean run (the attention trace's latents)."""
    from codi_probe.experiments.lens import lens_readout

    return lens_readout(codi_engine, answer_attention_trace)


@pytest.fixture(scope="session")
def mean_ablation(pytestconfig, codi_engine, answer_problems, ccta):
    """The CCTA sites (every position at the grid's layer) mean-ablated: each activation replaced by its mean
    over the answer problems. With the grid's zero and random (resample) methods it gives every zero-ablation
    claim its result under all three ablation types (claims-2026 method lessons)."""
    from codi_probe.engine import Record, Set
    from codi_probe.engine.trace_rows import from_problem_tensors, problem_tensors
    from codi_probe.experiments.common import engine_key
    from codi_probe.experiments.corruption import CorruptionResult, corruption_grid
    from codi_probe.plugin.sharing import shared_problems

    ps = list(answer_problems)
    clean = _shared_trace(pytestconfig, "mean_ablation_clean", codi_engine, ps, Record(sites=("resid_post",)), 16)
    means = {p: clean.mean_value("resid_post", ccta.layer, p) for p in ccta.positions}
    clean_rows = problem_tensors(clean)

    def chunk(idx):
        part = from_problem_tensors(codi_engine, [ps[i].question for i in idx], [clean_rows[i] for i in idx])
        return corruption_grid(codi_engine, [ps[i] for i in idx], layer=ccta.layer, clean=part,
                               methods={"mean": lambda i, p: Set(means)}, positions=ccta.positions).problem_tensors()

    rows = shared_problems(pytestconfig, "mean_ablation", codi_engine.model,
                           {"layer": ccta.layer, "positions": list(ccta.positions), **engine_key(codi_engine, ps)},
                           [p.id for p in ps], chunk, chunk=_chunk(len(ps)))
    return CorruptionResult.from_problem_tensors(ccta.layer, ccta.positions, ("mean",), rows)
