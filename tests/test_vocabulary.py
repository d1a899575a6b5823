"""codi_probe.vocabulary: words a word-level tokenizer cannot represent are named, once (issue 32 item 11)."""

from transformers import AutoTokenizer

from codi_probe.cli import main
from codi_probe.data.loaders import fixtures_dir
from codi_probe.vocabulary import describe_unknown, unknown_words


def test_unknown_words_of_the_word_level_tokenizer():
    tok = AutoTokenizer.from_pretrained(fixtures_dir() / "tokenizers" / "codi-tiny-arith")
    words = unknown_words(tok, ["How many zebras does Tom have?", "Tom sees 3 zebras."])
    assert "zebras" in words and "Tom" in words and words.count("zebras") == 1
    assert "3" not in words  # every integer 0..200 is a token
    gpt2 = AutoTokenizer.from_pretrained(fixtures_dir() / "tokenizers" / "gpt2")
    assert unknown_words(gpt2, ["How many zebras does Tom have?"]) == []  # BPE: nothing is unknown
    assert describe_unknown([f"w{i}" for i in range(12)]).endswith("'w9' and 2 more")


def test_run_warns_once_about_words_the_model_never_sees(capsys):
    """Defect: a question in words the word-level tokenizer does not know was answered silently."""
    assert main(["run", "codi-tiny-arith", "--question", "How many zebras?", "--question", "zebras and lions?",
                 "--max-new-tokens", "2", "--top-k", "1"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "does not know" in line]
    assert len(lines) == 1 and "'zebras'" in lines[0] and "'lions'" in lines[0]
