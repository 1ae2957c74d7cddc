"""``benchmarks/sources/mlperf_bert_rows.py``, which made the MLPerf BERT rows of the shipped file, on a tiny
results repository made here in MLPerf's layout (systems/*.json, results/*/bert/result_0.txt)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from gpuwise.predict.published import MappedRow, PublishedRow, map_row

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "sources" / "mlperf_bert_rows.py"
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git to build the results repository")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlperf_bert_rows", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _log(*lines: str) -> str:
    return "\n".join(f':::MLLOG {{"namespace": "", "time_ms": 1, "event_type": "POINT_IN_TIME", {line}}}'
                     for line in lines) + "\n"


def _repo(root: Path) -> Path:
    """A results repository with a packed B200 run, a tinygrad run and a run that logs no throughput."""
    def system(submitter: str, name: str, accelerator: str, framework: str) -> None:
        path = root / submitter / "systems" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"number_of_nodes": "1", "accelerators_per_node": "8",
                                    "accelerator_model_name": accelerator, "framework": framework}))

    def result(submitter: str, name: str, text: str) -> None:
        path = root / submitter / "results" / name / "bert" / "result_0.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    system("Acme", "b200x8", "NVIDIA Blackwell GPU (B200-SXM-180GB)", "NGC PyTorch 25.04")
    result("Acme", "b200x8", _log('"key": "global_batch_size", "value": 768')
           + "Namespace(packed_samples=True, average_packing_rate=2, train_batch_size=48, "
             "use_transformer_engine2=True, fused_bias_fc=True, fused_bias_mha=True, fused_dropout_add=True, "
             "fused_gemm_gelu=True, fp16=True, distributed_lamb=True, dwu_overlap_reductions=False, unpad=False, "
             "pad_fmha=True, unpad_fmha=False)\n"
           + _log('"key": "tracked_stats", "value": {"throughput": 11000.0}',
                  '"key": "tracked_stats", "value": {"throughput": 11581.26, "epoch_num": 2550982}'))
    system("tiny", "box", "NVIDIA GeForce RTX 4090", "tinygrad, commit abc")
    result("tiny", "box", _log('"key": "global_batch_size", "value": 66',
                               '"key": "tracked_stats", "value": {"throughput": 500.0}'))
    system("Quiet", "h100x8", "NVIDIA H100-SXM5-80GB", "PyTorch")
    result("Quiet", "h100x8", _log('"key": "global_batch_size", "value": 768'))
    repo = root / "training_results_v5.0"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", *env, f"--git-dir={repo}", f"--work-tree={root}", "add", "Acme", "tiny", "Quiet"],
                   check=True)
    subprocess.run(["git", *env, f"--git-dir={repo}", f"--work-tree={root}", "commit", "-qm", "results"], check=True)
    return repo


def test_rows_are_the_final_throughput_of_pytorch_runs_and_map_to_256_token_samples(tmp_path: Path) -> None:
    rows = _script().rows(str(_repo(tmp_path)))
    assert len(rows) == 1  # tinygrad is another framework; a log without a throughput gives no row
    (row,) = rows
    assert row[4:10] == ["B200", "8", "AMP-FP16", "96", "11581.3", "sequences/s"]
    assert row[10].startswith("mlcommons/training_results_v5.0@") and "Acme/results/b200x8/bert/result_0.txt" in row[10]
    assert "packed samples, average_packing_rate 2" in row[11] and "global_batch_size 768" in row[11]
    published = PublishedRow(index=2, model=row[0], task=row[2], gpu=row[4], num_gpus=int(row[5]), precision=row[6],
                             batch_per_gpu=int(row[7]), throughput=float(row[8]), unit=row[9], source=row[10],
                             notes=row[11])
    mapped = map_row(published)
    assert isinstance(mapped, MappedRow) and (mapped.workload, mapped.seq_len, mapped.batch_size) == ("bert-large",
                                                                                                      256, 96)
    # What the run ran, read from its argument line, and priced so.
    assert "FP8 layers (use_transformer_engine2=True in the log's arguments)" in row[11]
    assert (mapped.fp8_layers, mapped.fused_elementwise, mapped.sync_after_backward, mapped.half_model) == (True,) * 4
    assert "fused attention kernel (use_transformer_engine2=True, pad_fmha=True" in row[11]
    assert not mapped.attention_written_out


def test_a_run_unpadded_without_fmha_writes_attention_out() -> None:
    """``--unpad`` without ``--pad_fmha``/``--unpad_fmha`` (the L40S runs) is FastUnpadBertSelfAttention's bmm,
    softmax, dropout and bmm; a run the script cannot tell is an error, not a guess."""
    note = _script().attention_kernel
    args = "Namespace(use_transformer_engine2=False, pad_fmha=False, unpad_fmha=False, unpad=True)"
    assert note("", "Acme", "l40s", args).startswith("attention written out (use_transformer_engine2=False")
    fused = "Namespace(use_transformer_engine2=False, pad_fmha=True, unpad_fmha=False, unpad=False)"
    assert note("", "Acme", "a100", fused).startswith("fused attention kernel (")
    with pytest.raises(SystemExit, match="which attention"):
        note("", "Acme", "x", args.replace("unpad=True", "unpad=False"))
