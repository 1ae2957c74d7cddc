"""--gpus-per-node: hosts of fewer GPUs than an HGX board (PCIe workstations and servers of 2 or 4), whose
gradient ring leaves the host sooner; predict, plan, report, the saved plan and the launch all see the same
nodes."""

from __future__ import annotations

import pytest

from gpuwise.errors import GpuwiseError
from gpuwise.plan import PlanConfig, _gpu_counts, plan
from gpuwise.predict import parallel
from gpuwise.predict.single import PredictConfig, predict
from gpuwise.train.recommended import recommended_from
from tests.helpers import run_cli
from tests.test_launch import job, recommended


def _predict(gpus_per_node: int | None, gpu: str = "RTX-4090") -> object:
    return predict(PredictConfig.of(workload="bert-large-squad", gpu=gpu, num_gpus=8, batch_size=32,
                                    precision="amp-fp16", gpus_per_node=gpus_per_node))


def test_eight_gpus_in_hosts_of_four_are_two_nodes_joined_by_the_network() -> None:
    one, two = _predict(None), _predict(4)
    assert (one.num_nodes, two.num_nodes) == (1, 2)  # type: ignore[attr-defined]
    assert "network" in two.step.link and "network" not in one.step.link  # type: ignore[attr-defined]
    assert two.step.communication_s > one.step.communication_s  # type: ignore[attr-defined]
    assert two.label == "8× RTX-4090 (2 nodes)"  # type: ignore[attr-defined]


def test_a_geforce_node_shares_its_one_nic_among_its_gpus() -> None:
    eight, _ = parallel.default_network_gbits("Ada Lovelace", None, "RTX-4090")
    four, why = parallel.default_network_gbits("Ada Lovelace", None, "RTX-4090", 4)
    assert (eight, four) == (12.5, 25.0) and "100 Gb/s per node of 4" in why
    # a data-center card's network is per GPU (a cloud instance's NICs grow with its GPUs)
    assert parallel.default_network_gbits("Ada Lovelace", None, "L40S", 4)[0] == 50.0


def test_plan_counts_whole_nodes_of_the_size_given() -> None:
    assert _gpu_counts(64) == [1, 2, 4, 8, 16, 32, 64]
    assert _gpu_counts(64, 4) == [1, 2, 4, 8, 16, 32, 64]
    assert _gpu_counts(64, 6) == [1, 2, 4, 6, 12, 24, 48]  # 16 GPUs are not whole nodes of 6


def test_the_saved_plan_keeps_the_node_size_and_the_launch_uses_it(tmp_path) -> None:
    config = PlanConfig.of(workload="bert-large-squad", dataset_size=88_641, epochs=2, gpus=("RTX-4090",),
                           max_gpus=8, batch_size=32, precision="amp-fp16", gpus_per_node=4)
    result = plan(config, store_path=tmp_path / "results.db")
    eight = next(o for o in result.options if o.num_gpus == 8)
    assert eight.num_nodes == 2
    rec = recommended_from(result, eight)
    assert (rec.num_nodes, rec.gpus_per_node) == (2, 4)
    assert recommended(num_gpus=8, num_nodes=1).gpus_per_node == 8  # a plan saved before: nodes of 8
    layout = job(rec=recommended(num_gpus=8, num_nodes=2, node_gpus=4, label="8× H100-SXM5-80GB (2 nodes)"))
    assert (layout.layout.nodes, layout.layout.procs_per_node) == (2, 4)


@pytest.mark.parametrize("value", ["0", "9"])
def test_a_node_size_outside_one_to_eight_is_one_line(value: str) -> None:
    code, _, err = run_cli("predict", "resnet50", "--gpu", "A100-PCIe-80GB", "--gpus-per-node", value, "-q")
    assert code == 2 and "--gpus-per-node" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(GpuwiseError, match="from 1 to 8"):
        parallel.check_gpus_per_node(int(value) if value != "0" else 12)
