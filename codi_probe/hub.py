"""Hugging Face Hub repository ids as model, base and tokenizer specs: ``owner/name`` or ``owner/name@revision``.

A spec is a Hub id when it is not an existing local path, a shipped or built-in model name, nor a bundled
base name (:func:`codi_probe.loading.load_codi` asks those first), and it has exactly one ``/`` between
two Hub-valid names, optionally pinned with ``@revision`` (a branch, a tag or a 40-hex commit).

:func:`resolve` fetches only the files a role needs into the standard Hub cache (``HF_HUB_CACHE``, else
``HF_HOME/hub``, else ``~/.cache/huggingface/hub``), once, and returns the cached snapshot folder with the
commit the revision resolved to:

- ``model``: one weights file (``model.safetensors`` first, as the official loader), codi-probe's
  ``codi_config.json`` sidecar, ``config.json`` and the tokenizer files (the bcywinski variant reads its
  special ids from them). Never ``training_args.bin`` (a pickle) or any other file;
- ``base``: ``config.json``, ``generation_config.json`` and the tokenizer files: never the base weights
  (a CODI checkpoint holds the whole state dict), so a gated base (LLaMA) needs only its config and tokenizer;
- ``tokenizer``: the tokenizer files.

Offline (``HF_HUB_OFFLINE=1``, read at each call, or no network) the cache alone answers; whatever is
missing (repository, revision or file) is a :class:`HubError` of one line that names the id, the revision
and how to fetch it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import CHECKPOINT_NAMES, SIDECAR

DEFAULT_REVISION = "main"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja")
ROLE_FILES = {  # the optional files each role takes when the repository has them
    "model": (SIDECAR, "config.json", *TOKENIZER_FILES),
    "base": ("config.json", "generation_config.json", *TOKENIZER_FILES),
    "tokenizer": TOKENIZER_FILES,
}
ROLE_NEEDS = {  # (any one of these files must be there, what it is called in the message)
    "model": (CHECKPOINT_NAMES, "weights file"),
    "base": (("config.json",), "base config"),
    "tokenizer": (("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model"), "tokenizer"),
}
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
HUB_ID = re.compile(rf"(?P<repo>{_NAME}/{_NAME})(?:@(?P<revision>(?!/)(?!.*\.\.)[A-Za-z0-9._/-]+))?")  # no "..", no leading "/"
COMMIT = re.compile(r"[0-9a-f]{40}")


class HubError(ValueError):
    """A Hub id cannot be resolved; the message is one line naming the id, the revision and what to do."""


@dataclass(frozen=True)
class HubRef:
    """A repository id and the revision asked for (``None``: the default branch, ``main``)."""

    repo_id: str
    revision: str | None = None

    @property
    def rev(self) -> str:
        return self.revision or DEFAULT_REVISION

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class HubSnapshot:
    """A resolved repository: the cached snapshot folder ``path`` of ``commit`` (40 hex)."""

    repo_id: str
    revision: str
    commit: str
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit}


def parse_hub_id(spec: str | os.PathLike | None) -> HubRef | None:
    """The :class:`HubRef` of ``owner/name[@revision]``, or ``None`` when ``spec`` is not of that form
    (no Hub name has ``--`` or ``..``)."""
    if spec is None or not isinstance(spec, str):
        return None
    m = HUB_ID.fullmatch(spec)
    if m is None or "--" in m["repo"] or ".." in m["repo"]:
        return None
    return HubRef(m["repo"], m["revision"])


def cache_dir() -> Path:
    """The Hub cache, read from the environment at each call (``HF_HUB_CACHE``, ``HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set to a true value, read at each call."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    if any(f is not None for f in flags):
        return any(str(f).strip().lower() in ("1", "true", "yes", "on") for f in flags if f is not None)
    return bool(constants.HF_HUB_OFFLINE)


def resolve(ref: HubRef, role: str = "model") -> HubSnapshot:
    """Fetch (online) or find (offline, or when the Hub cannot be reached) the files ``role`` needs."""
    if role not in ROLE_FILES:
        raise ValueError(f"unknown Hub role {role!r} (known: {', '.join(ROLE_FILES)})")
    why_offline = "HF_HUB_OFFLINE is set" if offline() else None
    if why_offline is None:
        try:
            return _download(ref, role)
        except HubError:
            raise
        except Exception as exc:  # no network, the Hub down, a proxy: the cache may still hold it
            from .errors import first_line

            why_offline = f"the Hub cannot be reached ({type(exc).__name__}: {first_line(exc)})"
    return _from_cache(ref, role, why_offline)


def wanted_files(ref: HubRef, role: str, names: list[str] | set[str], commit: str,
                 where: str = "in the repository") -> list[str]:
    """The files of ``names`` (a repository listing) that ``role`` takes: the one weights file it needs
    (safetensors first) or the needed file, then the optional ones. Missing need: :class:`HubError`."""
    need, what = ROLE_NEEDS[role]
    present = set(names)
    found = [n for n in need if n in present]
    if not found:
        raise HubError(f"{ref.repo_id}@{ref.rev} (commit {commit[:12]}): no {what} {where} "
                       f"(expected {' or '.join(need)})")
    first = found[:1] if role == "model" else found
    return [*first, *(n for n in ROLE_FILES[role] if n in present and n not in first)]


def _download(ref: HubRef, role: str) -> HubSnapshot:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi().model_info(ref.repo_id, revision=ref.revision)
    except GatedRepoError:
        raise HubError(f"{ref.repo_id}: a gated repository; accept its licence on huggingface.co and log in "
                       f"(`hf auth login`), or pass a local directory") from None
    except RevisionNotFoundError:
        raise HubError(f"{ref.repo_id}: no revision {ref.rev!r} on the Hugging Face Hub") from None
    except RepositoryNotFoundError:
        raise HubError(f"{ref}: not a local path, and no such repository on the Hugging Face Hub (a typo, or "
                       f"private: log in with `hf auth login`)") from None
    commit = str(info.sha)
    files = wanted_files(ref, role, [s.rfilename for s in info.siblings or []], commit)
    folder = snapshot_download(ref.repo_id, revision=ref.rev, allow_patterns=files, cache_dir=str(cache_dir()))
    return HubSnapshot(ref.repo_id, ref.rev, Path(folder).name, Path(folder))


def _from_cache(ref: HubRef, role: str, why: str) -> HubSnapshot:
    """The snapshot the cache holds for ``ref``, laid out as the Hub writes it:
    ``models--owner--name/refs/<revision>`` holds the commit, ``snapshots/<commit>/`` the files."""
    from huggingface_hub.file_download import repo_folder_name

    root = cache_dir()
    storage = root / repo_folder_name(repo_id=ref.repo_id, repo_type="model")
    fetch = (f"fetch it once with network access (run this again without HF_HUB_OFFLINE, or "
             f"`hf download {ref.repo_id} --revision {ref.rev}`)")
    if not storage.is_dir():
        raise HubError(f"{ref}: not a local path, and Hub repository {ref.repo_id} (revision {ref.rev}) is not in "
                       f"the cache {root} while {why}; {fetch}")
    ref_file = storage / "refs" / ref.rev
    commit = ref.rev if COMMIT.fullmatch(ref.rev) else (ref_file.read_text().strip() if ref_file.is_file() else None)
    snapshot = storage / "snapshots" / commit if commit else None
    if snapshot is None or not snapshot.is_dir():
        cached = sorted(p.name for p in (storage / "refs").glob("*")) if (storage / "refs").is_dir() else []
        raise HubError(f"{ref.repo_id}: revision {ref.rev!r} is not in the cache {root} while {why} (cached: "
                       f"{', '.join(cached) or 'none'}); {fetch}")
    names = [p.name for p in snapshot.iterdir() if p.is_file() or p.is_symlink()]
    files = wanted_files(ref, role, names, commit, f"in the cached snapshot {snapshot} while {why}; {fetch}")
    broken = [f for f in files if not (snapshot / f).is_file()]
    if broken:  # a dangling link: its blob was removed from the cache
        raise HubError(f"{ref.repo_id}@{ref.rev}: cached {', '.join(broken)} points to a missing blob; {fetch}")
    return HubSnapshot(ref.repo_id, ref.rev, commit, snapshot)
