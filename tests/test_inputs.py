"""The input pipeline as a ceiling: CPU threads that decode and augment images feed the GPUs."""

from __future__ import annotations

import json

import pytest

from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import load_catalog
from gpuwise.plan import Option, PredictConfig, predict
from gpuwise.predict.inputs import InputRate, default_cpu_threads, input_ceiling, shipped_input_rate
from tests.helpers import run_cli


def test_the_ceiling_is_rate_times_threads_times_gpus_for_image_classification_only() -> None:
    rate = InputRate(images_per_s_per_thread=400.0, image_size=224, source="test")
    assert input_ceiling("image classification", "image", 12, 8, rate) == pytest.approx(400 * 12 * 8)
    assert input_ceiling("language (transformer)", "token", 12, 8, rate) is None
    assert input_ceiling("object detection", "image", 12, 8, rate) is None  # no decode model for it


def test_the_shipped_rate_is_measured_and_says_where() -> None:
    rate = shipped_input_rate()
    assert rate.images_per_s_per_thread > 10 and rate.image_size == 224
    assert "benchmarks/input_pipeline.py" in rate.source


@pytest.mark.parametrize("gpu, threads", [("H100-SXM5-80GB", 24), ("A100-SXM4-80GB", 12), ("V100-SXM2-16GB", 8),
                                          ("T4", 12), ("L40S", 24), ("RTX-4090", 16)])
def test_default_threads_follow_the_instances_a_gpu_is_rented_in(gpu: str, threads: int) -> None:
    assert default_cpu_threads(load_catalog().get(gpu))[0] == threads


def test_too_few_threads_make_the_input_pipeline_the_bound() -> None:
    def option(threads: int | None) -> Option:
        return predict(PredictConfig.of(workload="resnet18", gpu="H100-SXM5-80GB", num_gpus=8, batch_size=64,
                                     precision="amp-bf16", cpu_threads_per_gpu=threads))

    fed, starved = option(None), option(1)
    ceiling = shipped_input_rate().images_per_s_per_thread * 1 * 8
    assert starved.bound == "input pipeline" and starved.step is not None and fed.step is not None
    assert starved.step.samples_per_s == pytest.approx(ceiling)
    assert starved.step.input_ceiling_samples_per_s == pytest.approx(ceiling)
    assert fed.bound != "input pipeline"
    assert starved.step.step_s > fed.step.step_s


def test_bad_thread_counts_are_one_line() -> None:
    with pytest.raises(GpuwiseError, match=r"--cpu-cores-per-gpu must be a positive integer"):
        PredictConfig.of(workload="resnet18", gpu="T4", cpu_threads_per_gpu=0)
    code, _, err = run_cli("predict", "resnet18", "--gpu", "T4", "--cpu-cores-per-gpu", "none")
    assert code == 2 and "--cpu-cores-per-gpu" in err and len(err.strip().splitlines()) == 1


def test_predict_json_carries_the_ceiling() -> None:
    code, out, err = run_cli("predict", "resnet18", "--gpu", "A100-SXM4-80GB", "--cpu-cores-per-gpu", "2", "--json")
    assert code == 0, err
    step = json.loads(out)["step"]
    assert step["input_ceiling_samples_per_s"] == pytest.approx(shipped_input_rate().images_per_s_per_thread * 2)
