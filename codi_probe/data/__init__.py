"""Problem sets for codi-probe: GSM8K / GSM8K-Aug fixtures, verified clean/corrupted pairs,
template families with ground-truth intermediates, official answer scoring and a safe evaluator
for calculator annotations. Everything here is offline and deterministic."""

from .answers import answers_match, extract_answer, parse_gold
from .arith import Annotation, UnsafeExpressionError, evaluate_annotation, find_annotations, safe_eval
from .errors import DataFormatError, FixtureNotFoundError, MissingOptionalDependency
from .hub import load_from_hub
from .loaders import data_file, fixtures_dir, load_gsm8k, load_gsm8k_aug, load_pairs, load_problems
from .pairs import generate_pairs, pair_rows, pairs_json, rerun_chain, shipped_pairs_path, write_shipped_pairs
from .problemset import PairSet, Problem, ProblemPair, ProblemSet
from .selection import select, steps_stratum, stratify
from .templates import ao_synthetic_problems, cyw_problem, cyw_template_problems

__all__ = [
    "Annotation",
    "DataFormatError",
    "FixtureNotFoundError",
    "MissingOptionalDependency",
    "PairSet",
    "Problem",
    "ProblemPair",
    "ProblemSet",
    "UnsafeExpressionError",
    "answers_match",
    "ao_synthetic_problems",
    "cyw_problem",
    "cyw_template_problems",
    "data_file",
    "evaluate_annotation",
    "extract_answer",
    "find_annotations",
    "fixtures_dir",
    "generate_pairs",
    "load_from_hub",
    "load_gsm8k",
    "load_gsm8k_aug",
    "load_pairs",
    "load_problems",
    "pair_rows",
    "pairs_json",
    "parse_gold",
    "rerun_chain",
    "safe_eval",
    "select",
    "shipped_pairs_path",
    "steps_stratum",
    "stratify",
    "write_shipped_pairs",
]
