"""One StepConfig, nested in the plan's, predict's, bench's and train's configs: built and changed from flat
keywords (as flags and the Python API give them), read through, each config with its own defaults."""

from __future__ import annotations

import pytest

from gpuwise.bench.run import BenchConfig
from gpuwise.config import ActivationCheckpointing, OptimizerName, Precision, StepConfig
from gpuwise.errors import GpuwiseError
from gpuwise.plan import PlanConfig
from gpuwise.predict.single import PredictConfig
from gpuwise.train.config import TrainConfig


def test_flat_keywords_fill_the_nested_step() -> None:
    c = PlanConfig.of(workload="resnet50", dataset_size=1e6, epochs=3, batch_size=64, precision="amp-bf16",
                      optimizer="sgd", seq_len=None, image_size=160, max_gpus=8)
    assert c.step == StepConfig(workload="resnet50", batch_size=64, precision=Precision.AMP_BF16,
                                optimizer=OptimizerName.SGD, image_size=160)
    assert (c.workload, c.batch_size, c.precision, c.optimizer, c.image_size) == (
        "resnet50", 64, Precision.AMP_BF16, OptimizerName.SGD, 160)  # read through
    assert c.max_gpus == 8 and c.dataset_size == 1e6


def test_each_config_keeps_its_own_default_precision() -> None:
    assert PlanConfig.of(workload="resnet50", dataset_size=1e6, epochs=1).precision is Precision.AUTO
    assert PredictConfig.of(workload="resnet50", gpu="T4").precision is Precision.AUTO
    assert BenchConfig.of(workload="resnet50").precision is Precision.AUTO  # by the device it runs on
    assert TrainConfig.of(workload="resnet50").precision is Precision.AUTO
    assert StepConfig(workload="resnet50").precision is Precision.FP32  # profile's: it has no device


def test_with_changes_the_step_and_the_rest_and_checks_again() -> None:
    c = TrainConfig.of(workload="resnet50", steps=10, activation_checkpointing="full", precision="fp32")
    d = c.with_(precision="tf32", batch_size=8, steps=None, epochs=2)
    assert d.step.precision is Precision.TF32 and d.batch_size == 8 and (d.steps, d.epochs) == (None, 2)
    assert d.activation_checkpointing is ActivationCheckpointing.FULL and c.precision is Precision.FP32
    with pytest.raises(GpuwiseError, match="give --epochs or --steps, not both"):
        c.with_(epochs=2)


def test_an_unknown_name_in_the_step_names_the_flag() -> None:
    with pytest.raises(GpuwiseError, match=r"unknown precision 'bf16'.*--precision"):
        BenchConfig.of(workload="resnet50", precision="bf16")
