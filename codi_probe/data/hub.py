"""Optional loading through Hugging Face ``datasets`` (extra ``codi-probe[datasets]``; needs hub access).

Offline fixtures (``load_gsm8k``, ``load_gsm8k_aug``) are the default; this is only for other splits,
e.g. the GSM8K-Aug train split, which is not shipped.
"""

from __future__ import annotations

from typing import Any

from .errors import MissingOptionalDependency
from .problemset import ProblemSet
from .records import RecordError, problem_from_record


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise MissingOptionalDependency(
            "loading from the Hugging Face hub needs the optional 'datasets' package: "
            "pip install 'codi-probe[datasets]' (or use the offline fixtures)"
        ) from None
    return datasets


def load_from_hub(
    repo_id: str = "openai/gsm8k",
    split: str = "test",
    config: str | None = "main",
    *,
    streaming: bool = False,
    limit: int | None = None,
) -> ProblemSet:
    """A hub split in the GSM8K (``question``/``answer``) or GSM8K-Aug (``question``/``cot``/``answer``)
    shape, e.g. ``load_from_hub("zen-E/GSM8k-Aug", "train", None, streaming=True)``.

    ``streaming=True`` avoids the pyarrow error some ``datasets`` versions raise on GSM8k-Aug.
    """
    datasets = _import_datasets()
    rows = datasets.load_dataset(repo_id, config, split=split, streaming=streaming)
    name = f"hub:{repo_id}/{split}"
    family = repo_id.rsplit("/", 1)[-1].lower()
    problems = []
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        try:
            problems.append(problem_from_record(dict(row), f"{family}_{split}_{index}", family))
        except RecordError as exc:
            raise ValueError(f"{name}: row {index}: {exc}") from None
    return ProblemSet(problems, name=name, source=f"hf://datasets/{repo_id}")
