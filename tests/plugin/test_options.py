"""--codi-* options: command line > environment > ini > default, and bad values."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from codi_probe.plugin.options import default_model
from codi_probe.threads import cpu_count

pytest_plugins = ["pytester"]

INI = "[pytest]\ncodi_model = tiny-random-llama\ncodi_problems = 7\ncodi_dtype = bf16\n"


def test_entry_point_registers_the_plugin(pytestconfig: pytest.Config) -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert any(p.name == "codi_probe" and p.value == "codi_probe.plugin" for p in points)
    assert pytestconfig.pluginmanager.hasplugin("codi_probe")


def test_plugin_and_default_model_load_without_torch() -> None:
    """Importing the plugin (and resolving the default model) must not import torch."""
    code = ("import sys, codi_probe.plugin.hooks, codi_probe.plugin.fixtures\n"
            "from codi_probe.plugin.options import default_model\n"
            "print(default_model(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    loading = pytest.importorskip("codi_probe.loading")
    assert out == [loading.DEFAULT_MODEL, "False"]


@pytest.mark.parametrize("route", ["cli", "env", "ini", "default"])
def test_precedence(route: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_claims) -> None:
    """Each route wins over the ones below it: cli > env > ini > default."""
    args = []
    if route in ("cli", "env", "ini"):
        pytester.makeini(INI)
    if route in ("cli", "env"):
        monkeypatch.setenv("CODI_MODEL", "from-env")
        monkeypatch.setenv("CODI_PROBLEMS", "5")
    if route == "cli":
        args = ["--codi-model=from-cli", "--codi-problems=3"]
    options = run_claims(*args).report["options"]
    expected = {"cli": ("from-cli", 3), "env": ("from-env", 5), "ini": ("tiny-random-llama", 7),
                "default": (default_model(), None)}[route]
    assert (options["model"], options["problems"]) == expected
    assert options["sources"]["model"] == options["sources"]["problems"] == route
    assert options["dtype"] == ("fp32" if route == "default" else "bf16")


def test_pyproject_ini_options(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ncodi_model = "tiny-random-llama"\ncodi_seed = 5\n')
    options = run_claims().report["options"]
    assert (options["model"], options["seed"], options["sources"]["seed"]) == ("tiny-random-llama", 5, "ini")


def test_every_option_from_the_environment(monkeypatch: pytest.MonkeyPatch, run_claims) -> None:
    values = {"CODI_MODEL": "m", "CODI_BASE": "b", "CODI_TOKENIZER": "t", "CODI_DTYPE": "bf16",
              "CODI_DEVICE": "cuda:1", "CODI_PROBLEMS": "9", "CODI_SEED": "11", "CODI_THREADS": "3",
              "CODI_TOLERANCE": "0.5", "CODI_EXPECT": "none", "CODI_CACHE": "none"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    report = run_claims().report
    options = report["options"]
    assert (options["model"], options["base"], options["tokenizer"], options["dtype"], options["device"]) == \
        ("m", "b", "t", "bf16", "cuda:1")
    assert (options["problems"], options["seed"], options["threads"], options["tolerance"]) == (9, 11, 3, 0.5)
    assert options["expect"] == "none" and report["expectations"]["source"] == "none"
    assert options["cache"] is None and options["sources"]["cache"] == "env"  # "none" switches it off
    assert report["environment"]["threads_per_process"] == 3


def test_threads_default_to_cpu_count_per_process(run_claims) -> None:
    report = run_claims().report
    assert report["options"]["threads"] is None
    assert report["environment"]["threads_per_process"] == max(1, cpu_count())


def test_a_users_omp_num_threads_is_respected(monkeypatch: pytest.MonkeyPatch, run_claims) -> None:
    """Defect: the plugin set torch to the cpu count against the user's OMP_NUM_THREADS=1."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    report = run_claims().report
    assert report["environment"]["threads_per_process"] == 1
    monkeypatch.setenv("CODI_THREADS", "2")  # an explicit request still wins
    assert run_claims().report["environment"]["threads_per_process"] == 2


def test_ini_paths_are_relative_to_the_ini_file(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\ncodi_report = out/r.json\n")
    monkeypatch.chdir(pytester.mkdir("sub"))  # invoked from a subfolder: the ini folder still anchors
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert (pytester.path / "out" / "r.json").exists(), result.stdout.str()


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--codi-dtype=fp64"], {}, "--codi-dtype='fp64': must be one of fp32, bf16, fp16, mixed, native"),
    (["--codi-problems=0"], {}, "--codi-problems='0': must be at least 1"),
    ([], {"CODI_SEED": "abc"}, "CODI_SEED='abc': invalid literal for int()"),
    ([], {"CODI_TOLERANCE": "-1"}, "CODI_TOLERANCE='-1': must be a number >= 0"),
    (["--codi-lora-alpha=0"], {}, "--codi-lora-alpha='0': must be at least 1"),  # 0 is an error, never replaced
    ([], {"CODI_LORA_ALPHA": "-1"}, "CODI_LORA_ALPHA='-1': must be at least 1"),
])
def test_bad_values_are_usage_errors(args, env, message, monkeypatch: pytest.MonkeyPatch, run_claims) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = run_claims(*args)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in run.output
