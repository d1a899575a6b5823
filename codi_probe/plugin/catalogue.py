"""The catalogue's session fixtures: the engine, the problem sets, the clean traces and the CCTA grid.

Part of the plugin, so that the shipped catalogue (``hypotheses/``, installed as ``codi_probe.hypotheses``)
and a researcher's own claim files in their own repository use the same ones. Each is lazy: a run that
asks for none builds none. Built once per process (once per xdist worker); the model (``codi_model``),
the options and the ``claim`` recorder are in :mod:`codi_probe.plugin.fixtures`.

- ``codi_engine``: a :class:`~codi_probe.engine.CodiEngine` on the session's model;
- ``codi_problems``/``codi_questions``/``clean_trace``: the invariants' few GSM8K problems and their traced run;
- ``empirical_n``: problems per empirical claim (the ``--codi-depth`` tier, or ``--codi-problems``);
- ``answer_problems``/``template_problems``: the model's problem family (answer-scored and templated);
- ``answer_attention_trace``/``template_trace``: their clean runs; ``ccta``: the corruption grid;
- ``answer_lens``/``template_lens``: the logit lens of those runs at P0..P6;
- ``mean_ablation``: the CCTA sites mean-ablated (with the grid's zero and resample: all three types).
"""

import pytest

DEFAULT_PROBLEMS = 8  # invariants are exact checks: a few problems of mixed length suffice


@pytest.fixture(scope="session")
def codi_engine(codi_model):
    from codi_probe.engine import CodiEngine

    return CodiEngine(codi_model)


@pytest.fixture(scope="session")
def codi_problems(pytestconfig, codi_options):
    """The first N GSM8K test problems in file order (no filtering; N = --codi-problems)."""
    from codi_probe.data import load_gsm8k
    from codi_probe.plugin.metadata import add_session_metadata

    n = codi_options.problems or DEFAULT_PROBLEMS
    problems = list(load_gsm8k("test"))[:n]
    add_session_metadata(pytestconfig, "invariant_problems",
                         {"source": "gsm8k/test", "n": len(problems), "ids": [p.id for p in problems]},
                         section="data")
    return problems


@pytest.fixture(scope="session")
def codi_questions(codi_problems):
    return [p.question for p in codi_problems]


@pytest.fixture(scope="session")
def clean_trace(codi_engine, codi_questions):
    """One clean traced run of every problem (all module sites, attention), shared by the claims."""
    from codi_probe.engine import Record

    return codi_engine.run(codi_questions, record=Record(sites=("resid_post", "attn_out", "mlp_out"),
                                                         attention=True), max_new_tokens=8)


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

    ps = for_variant(family_problems(family, n, seed=seed, model_dir=model_dir(model)), model)
    add_session_metadata(pytestconfig, key, {"family": family, "n": len(ps), "fingerprint": ps.fingerprint(),
                                             "filters": ps.filters}, section="data")
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
def ccta(codi_engine, answer_problems, codi_options):
    """The seeds' CCTA grid: 7 positions x 7 corruption methods at relative depth 0.5 (layer 8 of 16)."""
    from codi_probe.experiments.common import depth_to_layer
    from codi_probe.experiments.corruption import corruption_grid

    layer = depth_to_layer(0.5, codi_engine.model.n_layers)
    return corruption_grid(codi_engine, list(answer_problems), layer=layer, seed=codi_options.seed,
                           cache_dir=codi_options.cache)


@pytest.fixture(scope="session")
def answer_attention_trace(codi_engine, answer_problems):
    """Clean run of the answer problems with attention (eager), shared by the attention and flow claims."""
    from codi_probe.engine import Record

    return codi_engine.run([p.question for p in answer_problems], record=Record(sites=(), attention=True),
                           max_new_tokens=1)


@pytest.fixture(scope="session")
def template_trace(codi_engine, template_problems):
    """Clean run of the template problems (latents and greedy answers), shared by lens and patching."""
    from codi_probe.engine import Record

    return codi_engine.run([p.question for p in template_problems], record=Record(sites=("resid_post",), logits=False))


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
def mean_ablation(codi_engine, answer_problems, ccta):
    """The CCTA sites (every position at the grid's layer) mean-ablated: each activation replaced by its mean
    over the answer problems. With the grid's zero and random (resample) methods it gives every zero-ablation
    claim its result under all three ablation types (claims-2026 method lessons)."""
    from codi_probe.engine import Record, Set
    from codi_probe.experiments.corruption import corruption_grid

    qs = [p.question for p in answer_problems]
    clean = codi_engine.run(qs, record=Record(sites=("resid_post",)), max_new_tokens=16)
    means = {p: clean.mean_value("resid_post", ccta.layer, p) for p in ccta.positions}
    return corruption_grid(codi_engine, list(answer_problems), layer=ccta.layer, clean=clean,
                           methods={"mean": lambda i, p: Set(means)}, positions=ccta.positions)
