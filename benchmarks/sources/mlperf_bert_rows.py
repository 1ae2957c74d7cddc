"""Rows of ``gpuwise/data/published_mlperf_training.csv`` for MLPerf Training's BERT, read from the results
repositories' own logs: ``python benchmarks/sources/mlperf_bert_rows.py CHECKOUT [CHECKOUT ...]`` prints one
CSV row per BERT result of a checkout of mlcommons/training_results_vX.Y whose log gives a throughput.

A row is one submitted run (``result_0.txt``): the GPU and count from the submitter's ``systems/*.json``,
``global_batch_size`` and the final ``tracked_stats`` throughput (total samples trained / measured time, all
GPUs) from the log. An MLPerf BERT sample is one sequence of the Wikipedia phase-2 set, packed two to a
512-token row on average (``average_packing_rate=2``) or unpadded; ``gpuwise.predict.published`` maps it.
Runs in another framework than PyTorch (tinygrad) are left out: they are not the workload gpuwise models.

Whether a run used Transformer Engine's FP8 layers (``--use_transformer_engine2``, "Enable FP8 layers" in
run_pretraining.py: FP8 QKV/projection/MLP GEMMs and FP8 fused attention, te_layers.py) is read from the log
(its argument line, or the FP8 attention it prints), else from the submission's config for that system
(``_CONFIGS``, each checked to set the flag), and said in the notes: ``FP8 layers`` or ``16-bit layers``.
Its fused elementwise kernels (bias in the GEMM epilogue, GELU fused into the GEMM, dropout fused with the
residual add, bias fused into attention: ``_FUSION_FLAGS``) are read the same way: ``fused elementwise kernels``;
and its model and gradient sync: under ``--fp16`` with ``--distributed_lamb`` run_pretraining.py makes the
model ``.half()`` (no autocast) and apex's DistributedFusedLAMB steps each GPU's share of the parameters,
reducing the 16-bit gradients after backward unless ``--dwu-overlap-reductions`` is given: ``16-bit model,
16-bit gradients reduced after backward``.
``python benchmarks/sources/mlperf_bert_rows.py --fp8 CSV CHECKOUT...`` prints, for each BERT row of CSV read
from one of the checkouts, its file line and that evidence (the three notes).
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
# Results directories whose log prints no argument line (nor, for the FP8 note, the FP8 attention): the config of
# the same submission that ran them (or, where the submission has none for that system, the one named and why),
# whose flags, and whose run_and_time.sh's, each note is read from instead.
_CONFIGS = {
    "NVIDIA/eos_ngc23.04_pytorch": "NVIDIA/benchmarks/bert/implementations/eos_ngc23.04_pytorch/"
                                   "config_DGXH100_1x8x48x1_pack.sh",
    "NVIDIA/eos_n8_ngc23.04_pytorch": "NVIDIA/benchmarks/bert/implementations/eos_n8_ngc23.04_pytorch/"
                                      "config_DGXH100_8x8x72x1.sh",
    "NVIDIA/h200_ngc23.09_pytorch": "NVIDIA/benchmarks/bert/implementations/h200_ngc23.09_pytorch/"
                                    "config_DGXH100_1x8x48x1_pack.sh",
    "NVIDIA/b200_preview_pytorch": "NVIDIA/benchmarks/bert/implementations/b200_preview_pytorch/"
                                   "config_DGXB200_1x8x48x1_pack.sh",
    "NVIDIA/nyx_n1_ngc25.04_pytorch": "NVIDIA/benchmarks/bert/implementations/nyx_n1_ngc25.04_pytorch/"
                                      "config_DGXB200_1x8x48x1_pack.sh",
    "NVIDIA/tyche_ngpu8_ngc25.04_pytorch": "NVIDIA/benchmarks/bert/implementations/tyche_ngpu8_ngc25.04_pytorch/"
                                           "config_GB200_2x4x48x1_pack.sh",
    "NVIDIA/tyche_ngpu64_ngc25.04_pytorch": "NVIDIA/benchmarks/bert/implementations/tyche_ngpu64_ngc25.04_pytorch/"
                                            "config_GB200_16x4x36x1_pack.sh",
    "ASUSTeK/ESC8000A-E12-8xH100-PCIE-80GB": "ASUSTeK/benchmarks/bert/implementations/pytorch/config_ESC8000A-E12.sh",
    "ASUSTeK/ESC_N8A-E12": "ASUSTeK/benchmarks/bert/implementations/pytorch/config_N8A.sh",
    "Quanta_Cloud_Technology/D54U-3U": "Quanta_Cloud_Technology/benchmark/bert/implementations/pytorch/"
                                       "config_D54U-3U.sh",
    "Quanta_Cloud_Technology/D74H-7U": "Quanta_Cloud_Technology/benchmark/bert/implementations/pytorch/"
                                       "config_D74H-7U.sh",
    "QCT/D74H-7U": "QCT/benchmark/bert/implementations/pytorch/config_D74H-7U.sh",
    "GigaComputing/G593-SD1_pytorch": "GigaComputing/benchmark/bert/implementations/pytorch/"
                                      "config_G593-SD1_1x8x48x1_pack.sh",
    "GigaComputing/G593-ZD1_pytorch": "GigaComputing/benchmark/bert/implementations/pytorch/"
                                      "config_G593-ZD1_1x8x48x1_pack.sh",
    "GigaComputing/G893-SD1_pytorch": "GigaComputing/benchmarks/bert/implementations/pytorch/"
                                      "config_G893-SD1_1x8x48x1_pack.sh",
    "Lenovo/SR780aV3-8xB200_SXM_180GB": "Lenovo/benchmarks/bert/config_DGXB200_1x8x48x1_pack.sh",
    # No config for these systems in their submission: the same submitter's config for its sibling system in
    # the same round, which sets the flag (Dell's XE9680 H100 in v4.1; Dell's XE9680L B200 in v5.0, whose
    # GB200 runs used the same container; NVIDIA's own GB200 configs, tyche_*, set it too).
    "Dell/XE9680x8H200-SXM-141GB": "Dell/benchmarks/bert/implementations/pytorch/config_XE9680x8H100-SXM-80GB.sh",
    "Dell/1xXE9712x4GB200": "Dell/benchmarks/bert/implementations/pytorch/config_XE9680L_B200.sh",
    "Dell/2xXE9712x4GB200": "Dell/benchmarks/bert/implementations/pytorch/config_XE9680L_B200.sh",
    "Dell/4xXE9712x4GB200": "Dell/benchmarks/bert/implementations/pytorch/config_XE9680L_B200.sh",
    "Dell/8xXE9712x4GB200": "Dell/benchmarks/bert/implementations/pytorch/config_XE9680L_B200.sh",
}
_SIBLING_CONFIGS = {"Dell/XE9680x8H200-SXM-141GB", *(f"Dell/{n}xXE9712x4GB200" for n in (1, 2, 4, 8))}
_FP8_FLAG = "--use_transformer_engine2"
_ATTENTION_FLAGS = ("use_transformer_engine2", "pad_fmha", "unpad_fmha", "unpad")
_FUSION_FLAGS = ("fused_bias_fc", "fused_bias_mha", "fused_dropout_add", "fused_gemm_gelu")
_GPU_NOTES = {"GB200": "GB200: a B200-class GPU beside a Grace CPU, up to 1200 W (catalog entry GB200)"}


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, *args], capture_output=True, text=True, check=True).stdout


def _config(submitter: str, system: str) -> str:
    """The config a run's notes are read from when its log prints no argument line (``_CONFIGS``)."""
    config = _CONFIGS.get(f"{submitter}/{system}")
    if config is None:
        raise SystemExit(f"{submitter}/{system}: the log prints no argument line and no config is known for it: "
                         "add it to _CONFIGS")
    return config


def run_notes(repo: str, submitter: str, system: str, log: str) -> str:
    """What the run ran, as the row's notes say it (FP8 layers, fused kernels, model and gradient sync), each
    with where it is read."""
    return "; ".join(note(repo, submitter, system, log)
                     for note in (fp8_layers, fused_kernels, gradient_sync, attention_kernel))


def fp8_layers(repo: str, submitter: str, system: str, log: str) -> str:
    """Whether the run used Transformer Engine's FP8 layers, and where that is read: a note for the row."""
    flag = re.search(r"\buse_transformer_engine2=(\w+)", log)
    if flag:
        used = flag.group(1) == "True"
        what = "FP8 layers" if used else "16-bit layers, no Transformer Engine FP8"
        return f"{what} (use_transformer_engine2={flag.group(1)} in the log's arguments)"
    if "using fp8 FMHA" in log or "FP8_MHA" in log:
        return "FP8 layers (the log prints Transformer Engine's FP8 attention: 'using fp8 FMHA' or FP8_MHA modules)"
    config = _config(submitter, system)
    if _FP8_FLAG not in _git(repo, "show", f"HEAD:{config}"):
        raise SystemExit(f"{config} does not set {_FP8_FLAG}")
    if f"{submitter}/{system}" in _SIBLING_CONFIGS:
        return (f"FP8 layers (the submission has no config for this system; {_FP8_FLAG} in {config}, the same "
                "submitter's config for its sibling system in the same round)")
    return f"FP8 layers ({_FP8_FLAG} in {config})"


def fused_kernels(repo: str, submitter: str, system: str, log: str) -> str:
    """Whether the run fused its elementwise ops into the kernels around them (``_FUSION_FLAGS``), and where
    that is read: a note for the row."""
    flags = {f: re.search(rf"\b{f}=(\w+)", log) for f in _FUSION_FLAGS}
    if all(flags.values()):
        on = [f for f, m in flags.items() if m and m.group(1) == "True"]
        if len(on) < len(_FUSION_FLAGS):
            return f"not all elementwise kernels fused ({', '.join(on) or 'none'} of {', '.join(_FUSION_FLAGS)} set)"
        return f"fused elementwise kernels ({', '.join(f'{f}=True' for f in _FUSION_FLAGS)} in the log's arguments)"
    config = _config(submitter, system)
    text = _git(repo, "show", f"HEAD:{config}")
    if not all(f"--{f}" in text for f in _FUSION_FLAGS):
        raise SystemExit(f"{config} does not set every one of {_FUSION_FLAGS}")
    return f"fused elementwise kernels ({' '.join(f'--{f}' for f in _FUSION_FLAGS)} in {config})"


def gradient_sync(repo: str, submitter: str, system: str, log: str) -> str:
    """How the run reduced its gradients, and where that is read: a note for the row."""
    lamb = re.search(r"\bdistributed_lamb=(\w+)", log)
    overlap = re.search(r"\bdwu_overlap_reductions=(\w+)", log)
    fp16 = re.search(r"\bfp16=(\w+)", log)
    if lamb and overlap and fp16:
        if (lamb.group(1), overlap.group(1), fp16.group(1)) != ("True", "False", "True"):
            return (f"gradient sync: fp16={fp16.group(1)}, distributed_lamb={lamb.group(1)}, "
                    f"dwu_overlap_reductions={overlap.group(1)}")
        return ("16-bit model, 16-bit gradients reduced after backward (fp16=True, distributed_lamb=True, "
                "dwu_overlap_reductions=False in the log's arguments)")
    config = _config(submitter, system)
    launcher = config.rsplit("/", 1)[0] + "/run_and_time.sh"
    script = _git(repo, "show", f"HEAD:{launcher}")
    if ("--fp16" not in script or "--distributed_lamb" not in script
            or "--dwu-overlap-reductions" in script + _git(repo, "show", f"HEAD:{config}")):
        raise SystemExit(f"{launcher} / {config}: not --fp16 DistributedFusedLAMB without --dwu-overlap-reductions")
    return (f"16-bit model, 16-bit gradients reduced after backward ({launcher} passes --fp16 --distributed_lamb "
            "and neither it nor the config passes --dwu-overlap-reductions, off by default)")


def attention_kernel(repo: str, submitter: str, system: str, log: str) -> str:
    """Whether the run's attention was a fused kernel (Transformer Engine's FP8 attention, the FMHA kernels of
    ``--pad_fmha``/``--unpad_fmha``) or written out (``--unpad`` alone: ``FastUnpadBertSelfAttention``'s bmm,
    softmax, dropout and bmm per sequence; ``run_pretraining.py`` turns ``fused_mha`` off under ``--unpad``), and
    where that is read: a note for the row."""
    flags = {f: re.search(rf"\b{f}=(\w+)", log) for f in _ATTENTION_FLAGS}
    if all(flags.values()):
        on = {f for f, m in flags.items() if m and m.group(1) == "True"}
        where = ", ".join(f"{f}={m.group(1)}" for f, m in flags.items() if m) + " in the log's arguments"
    else:
        config = _config(submitter, system)
        text = _git(repo, "show", f"HEAD:{config}")
        on = {f for f in _ATTENTION_FLAGS if re.search(rf"--{f}\b", text)}
        where = f"{', '.join(f'--{f}' for f in sorted(on)) or 'none of --' + ', --'.join(_ATTENTION_FLAGS)} in {config}"
    if on & {"use_transformer_engine2", "pad_fmha", "unpad_fmha"}:
        return f"fused attention kernel ({where})"
    if "unpad" in on:
        return f"attention written out ({where})"
    raise SystemExit(f"{submitter}/{system}: neither a fused attention kernel nor --unpad ({where}): which attention?")


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
        notes += f"; {run_notes(repo, submitter, system, log)}"
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


def fp8_of_file(csv_path: str, checkouts: list[str]) -> None:
    """Each BERT row of ``csv_path`` that names a result of one of ``checkouts``: its line and ``run_notes``."""
    repos = {re.search(r"training_results_v([\d.]+)", c).group(1): c for c in checkouts}  # type: ignore[union-attr]
    with open(csv_path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            match = re.fullmatch(r"mlcommons/training_results_v([\d.]+)@\w+:(([^/]+)/results/([^/]+)/bert/\S+)",
                                 row["source"].split(" (read")[0])
            if not match or match.group(1) not in repos:
                continue
            repo = repos[match.group(1)]
            log = _git(repo, "show", f"HEAD:{match.group(2)}")
            print(f"{csv_path}:{line}\t{run_notes(repo, match.group(3), match.group(4), log)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fp8"]:
        fp8_of_file(sys.argv[2], sys.argv[3:])
        sys.exit()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for checkout in sys.argv[1:]:
        writer.writerows(rows(checkout))
