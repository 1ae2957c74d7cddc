"""Rows of ``gpuwise/data/published_mlperf_training.csv`` for MLPerf Training's BERT, read from the results
repositories' own logs: ``python benchmarks/sources/mlperf_bert_rows.py CHECKOUT [CHECKOUT ...]`` prints one
CSV row per BERT result of a checkout of mlcommons/training_results_vX.Y whose log gives a throughput.

A row is one submitted run (``result_0.txt``): the GPU and count from the submitter's ``systems/*.json``,
``global_batch_size`` and the final ``tracked_stats`` throughput (total samples trained / measured time, all
GPUs) from the log. An MLPerf BERT sample is one sequence of the Wikipedia phase-2 set, packed two to a
512-token row on average (``average_packing_rate=2``) or unpadded; ``gpuwise.predict.published`` maps it.
Runs in another framework than PyTorch (tinygrad) are left out: they are not the workload gpuwise models.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

# The systems' accelerator names -> the gpuwise catalog's (a name left as written is not in the catalog).
_GPUS = {
    "NVIDIA H100-SXM5-80GB": "H100-SXM5-80GB", "NVIDIA H100-SXM-80GB": "H100-SXM5-80GB",
    "NVIDIA H100-PCIe-80GB": "H100-PCIe-80GB", "NVIDIA H200-SXM5-141GB": "H200-SXM-141GB",
    "NVIDIA Blackwell GPU (B200-SXM-180GB)": "B200", "NVIDIA Blackwell GPU (GB200)": "GB200",
    "NVIDIA L40S": "L40S", "NVIDIA A100-SXM4-80GB": "A100-SXM4-80GB",
    "NVIDIA A100 - PCIe - 80 GB": "A100-PCIe-80GB", "NVIDIA RTX A5000": "RTX-A5000",
}

_NOT_IN_CATALOG = {"RTX-A5000": "RTX A5000"}
_GPU_NOTES = {"GB200": "GB200: a B200-class GPU beside a Grace CPU, up to 1200 W (catalog entry GB200)"}


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, *args], capture_output=True, text=True, check=True).stdout


def rows(repo: str) -> list[list[str]]:
    version = re.search(r"training_results_v([\d.]+)", repo)
    name = f"mlcommons/training_results_v{version.group(1) if version else '?'}"
    commit = _git(repo, "rev-parse", "HEAD").strip()[:8]
    out = []
    for path in _git(repo, "ls-tree", "-r", "--name-only", "HEAD").splitlines():
        match = re.fullmatch(r"([^/]+)/results/([^/]+)/bert/result_0\.txt", path)
        if not match:
            continue
        submitter, system = match.groups()
        spec = json.loads(_git(repo, "show", f"HEAD:{submitter}/systems/{system}.json"))
        framework = spec.get("framework", "")
        if "tinygrad" in framework:
            continue
        try:
            log = _git(repo, "show", f"HEAD:{path}")
        except subprocess.CalledProcessError:
            continue  # a log the snapshot lists but does not hold (a large file left out)
        throughputs = re.findall(r'"key": "tracked_stats", "value": \{"throughput": ([\d.]+)', log)
        batch = re.search(r'"key": "global_batch_size", "value": (\d+)', log)
        if not throughputs or not batch:
            continue  # a log without a throughput (some submitters log only the time to train)
        gpus = int(spec["number_of_nodes"]) * int(spec["accelerators_per_node"])
        accelerator = spec["accelerator_model_name"]
        gpu = _GPUS.get(accelerator, accelerator)
        args = re.search(r"Namespace\((.*)", log)
        packed = re.search(r"\bpacked_samples=(\w+)", args.group(1)) if args else None
        rate = re.search(r"\baverage_packing_rate=(\d+)", args.group(1)) if args else None
        if packed is None:
            layout = "packing not printed in the log"
        elif packed.group(1) == "True":
            layout = f"packed samples, average_packing_rate {rate.group(1) if rate else '?'}"
        else:
            layout = "unpacked (unpadded) samples"
        notes = (
            f"MLPerf Training v{name.rsplit('v', 1)[1]} closed division, {submitter}, {system} "
            f"({spec['number_of_nodes']} node(s) x {spec['accelerators_per_node']} {accelerator}); "
            f"system json framework: '{framework}'; global_batch_size {batch.group(1)} in log; throughput = final "
            "'tracked_stats' throughput in result_0.txt (= global samples trained / measured time, all GPUs); "
            f"NVIDIA MLPerf BERT: --fp16, {layout}, fused MHA kernels, CUDA graphs, LAMB; "
            "batch_per_gpu = global_batch_size/num_gpus (samples: one Wikipedia sequence each)"
        )
        if gpu in _NOT_IN_CATALOG or gpu == accelerator:
            notes += f"; GPU not in the gpuwise catalog ({_NOT_IN_CATALOG.get(gpu, accelerator)})"
        elif gpu in _GPU_NOTES:
            notes += f"; {_GPU_NOTES[gpu]}"
        out.append([
            "BERT-large (MLPerf, packed sequences)", "Transformer",
            "pre-training phase 2 (MLPerf, Wikipedia, max seq len 512, packed sequences)", "PyTorch", gpu,
            str(gpus), "AMP-FP16", str(int(batch.group(1)) // gpus), f"{float(throughputs[-1]):.1f}", "sequences/s",
            f"{name}@{commit}:{path} (read 2026-12-06)", notes,
        ])
    return out


if __name__ == "__main__":
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for checkout in sys.argv[1:]:
        writer.writerows(rows(checkout))
