"""``load_codi`` and ``load_checkpoint``: argument checks and a quiet load."""

import warnings

import pytest

from codi_probe.loading import load_checkpoint, load_codi


@pytest.mark.parametrize("alpha", [0, -1, 0.0, 0.5])
def test_lora_alpha_must_be_positive(alpha):
    """Defect: ``lora_alpha=0`` was replaced by the default 32 (``lora_alpha or ...``) and the fingerprint
    said it was given, not assumed."""
    for load in (load_codi, load_checkpoint):
        with pytest.raises(ValueError, match=r"lora_alpha .*: must be a positive integer") as info:
            load("codi-tiny-arith" if load is load_codi else _shipped(), lora_alpha=alpha)
        assert "\n" not in str(info.value)


def test_a_given_lora_alpha_is_kept():
    model = load_codi("codi-tiny-arith", lora_alpha=3)
    assert model.config.lora_alpha == 3 and not model.fingerprint()["lora_alpha_assumed"]


def _shipped():
    from codi_probe.data.loaders import fixtures_dir

    return fixtures_dir() / "models" / "codi-tiny-arith"


@pytest.mark.parametrize("name", ["tiny-random-gpt2", "tiny-random-llama", "codi-tiny-arith"])
def test_loading_emits_no_warning_and_prints_nothing(name, capfd):
    """Defect: every load warned (peft: fan_in_fan_out on GPT-2's Conv1D; transformers: the mean-resizing
    notice, printed once per process) before anything else was printed."""
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_codi(name)
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr() == ("", "")
