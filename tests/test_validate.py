"""`gpuwise validate` beyond its statistics: your own published files, GPU generations, and the
measurements in your results store. The full held-out run (~45 s) is the README's and RESULTS'
command; these tests use small steps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuwise.bench.result import BenchResult, Ceilings
from gpuwise.cli.app import get_app
from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import load_catalog
from gpuwise.predict.fit import generation, held_out, predict_row, shipped_efficiency
from gpuwise.predict.published import COLUMNS, MappedRow, PublishedRow, load_published, map_llm_run, map_row
from gpuwise.predict.step import ProfileCache
from gpuwise.validate import local_checks, mapped_rows
from tests.helpers import stored_result

HEADER = ",".join(COLUMNS)
DATA = Path(__file__).parents[1] / "gpuwise" / "data"  # the shipped published files


def _row(
    model: str, gpu: str = "H100-SXM5-80GB", notes: str = "", unit: str = "images/s", **kw: object
) -> PublishedRow:
    fields: dict[str, object] = dict(index=2, model=model, task="", gpu=gpu, num_gpus=1, precision="AMP-FP16",
                                     batch_per_gpu=8, throughput=100.0, unit=unit, source="test", notes=notes)
    return PublishedRow(**(fields | kw))  # type: ignore[arg-type]


def test_a_file_of_your_own_loads_with_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "mine.csv"
    f.write_text(f"{HEADER}\nresnet50,image classification,L4,1,AMP-FP16,64,700,images/s,my run,\n")
    (row,) = load_published(f)
    assert (row.line, row.gpu, row.batch_per_gpu, row.throughput) == (f"{f}:2", "L4", 64, 700.0)
    m = map_row(row)
    assert isinstance(m, MappedRow) and (m.workload, m.precision) == ("resnet50", "amp-fp16")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,gpu\nresnet50,L4\n", r"missing column\(s\) task, num_gpus, precision"),
        (f"{HEADER}\nresnet50,x,L4,two,AMP-FP16,64,700,images/s,s,\n",
         r"line 2: column num_gpus must be a positive int"),
        (f"{HEADER}\nresnet50,x,L4,1,AMP-FP16,64,-3,images/s,s,\n",
         r"line 2: column throughput must be a positive float"),
    ],
)
def test_a_malformed_file_names_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(GpuwiseError, match=message):
        load_published(f)
    result = CliRunner().invoke(get_app(), ["validate", "--published", str(f)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "bad.csv" in result.output


def test_zoo_names_map_with_their_notes() -> None:
    m = map_row(_row("gpt2", unit="tokens/s", notes="seq len 256; optimizer sgd-momentum"))
    assert isinstance(m, MappedRow) and (m.seq_len, m.optimizer, m.counts_tokens) == (256, "sgd-momentum", True)
    assert map_row(_row("nosuchmodel")) == "no zoo workload with this model"
    assert map_row(_row("evil.py:factory")) == "no zoo workload with this model"  # a data file never imports code
    assert map_row(_row("resnet50", unit="furlongs/s")).startswith("unit furlongs/s")  # type: ignore[union-attr]


def test_mlperf_bert_samples_map_to_one_wikipedia_sequence_each() -> None:
    """MLPerf's BERT counts sequences packed two to a 512-token row: a sample is a 256-token sequence, so
    the 96 samples a GPU steps are 48 packed rows' tokens."""
    m = map_row(_row("BERT-large (MLPerf, packed sequences)", unit="sequences/s", batch_per_gpu=96))
    assert isinstance(m, MappedRow)
    assert (m.workload, m.seq_len, m.batch_size, m.counts_tokens) == ("bert-large", 256, 96, False)
    assert map_row(_row("BERT-large (MLPerf, packed sequences)", unit="images/s")).startswith("unit images/s")  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ["BERT-base", "bert-base", "BERT-Base"])
def test_a_squad_row_is_fine_tuning_at_384_tokens_whatever_the_bert_name(model: str) -> None:
    """A SQuAD row is BertForQuestionAnswering at run_squad.py's 384 tokens, never pre-training at the zoo's 128
    (whose vocabulary-wide MLM head the fine-tuning step does not run)."""
    m = map_row(_row(model, task="SQuAD v1.1 fine-tuning", unit="sequences/s", batch_per_gpu=32))
    assert isinstance(m, MappedRow) and (m.workload, m.seq_len) == ("bert-base-squad", 384)
    m = map_row(_row("BERT-large", task="fine-tuning SQuAD v1.1", unit="sequences/s", notes="seq len 256"))
    assert isinstance(m, MappedRow) and (m.workload, m.seq_len) == ("bert-large-squad", 256)


def test_bert_pre_training_rows_need_their_sequence_length_unless_named_as_the_zoo_does() -> None:
    m = map_row(_row("BERT-base", task="pre-training", unit="sequences/s", notes="seq len 512"))
    assert isinstance(m, MappedRow) and (m.workload, m.seq_len) == ("bert-base", 512)
    assert map_row(_row("BERT-large", task="pre-training", unit="sequences/s")).startswith(  # type: ignore[union-attr]
        "sequence length not stated")
    m = map_row(_row("bert-large", task="pre-training", unit="sequences/s"))  # a zoo row: the zoo's shape
    assert isinstance(m, MappedRow) and (m.workload, m.seq_len) == ("bert-large", 128)


def test_fp32_rows_run_as_tf32_where_the_gpu_has_tf32_tensor_cores(tmp_path: Path) -> None:
    """PyTorch's cuDNN default and NVIDIA's containers run FP32 as TF32 on Ampere and later: an FP32 row there
    is predicted as TF32 and says so; a V100 (no TF32) or a row whose notes say "TF32 off" stays FP32."""
    f = tmp_path / "mine.csv"
    lines = [
        "resnet50,x,A100-SXM4-80GB,1,FP32,64,700,images/s,s,",
        "resnet50,x,A100-SXM4-80GB,1,TF32,64,700,images/s,s,",
        "resnet50,x,A100-SXM4-80GB,1,FP32,64,700,images/s,s,TF32 off (torch.backends.cudnn.allow_tf32 = False)",
        "resnet50,x,V100-SXM2-16GB,1,FP32,64,700,images/s,s,",
    ]
    f.write_text("\n".join([HEADER, *lines]) + "\n")
    mapped, skipped = mapped_rows(load_published(f), load_catalog())
    assert not skipped
    assert [(m.precision, m.row.precision) for m in mapped] == [
        ("tf32", "FP32 (ran as TF32)"), ("tf32", "TF32"), ("fp32", "FP32"), ("fp32", "FP32")]


def test_no_shipped_row_is_read_as_tf32_that_its_source_calls_fp32() -> None:
    """The shipped constants were fitted on these rows as their sources label them: NVIDIA's tables call a
    GPU's TF32 runs TF32, and their FP32 rows are on GPUs without TF32 (V100s)."""
    catalog = load_catalog()
    for path in sorted(set(DATA.glob("published_*.csv")) - {DATA / "published_llm_runs.csv"}):
        mapped, _ = mapped_rows(load_published(path), catalog)
        assert all(not m.row.precision.endswith("(ran as TF32)") for m in mapped), path


def test_every_shipped_mlperf_row_maps_but_retinanet() -> None:
    """ResNet-50 and BERT rows map to zoo workloads on catalog GPUs (GB200 included); RetinaNet has no zoo
    workload, which validate says."""
    path = DATA / "published_mlperf_training.csv"
    catalog = load_catalog()
    mapped, skipped = mapped_rows(load_published(path), catalog)
    assert {why for _, why in skipped} == {"no zoo workload with this model"}
    assert all(r.model.startswith("RetinaNet") for r, _ in skipped)
    assert {m.row.gpu for m in mapped} >= {"B200", "GB200", "H100-SXM5-80GB", "H200-SXM-141GB", "L40S"}


def test_the_shipped_turing_rows_map_as_the_eager_fp32_runs_they_were() -> None:
    """The RTX 2080 Ti and Titan RTX rows (a PyTorch ImageNet script, FP32, torch.optim.SGD) all map, on
    CUDA cores (Turing has no TF32) with the eager optimizer their notes name: Turing is a checked generation."""
    path = DATA / "published_other_training.csv"
    catalog = load_catalog()
    mapped, skipped = mapped_rows(load_published(path), catalog)
    turing = [m for m in mapped if generation(m, catalog) == "Turing"]
    assert not skipped and {m.row.gpu for m in turing} == {"RTX-2080-Ti", "Titan-RTX"}
    assert {(m.workload, m.precision, m.optimizer, m.fused_optimizer) for m in turing} == {
        (w, Precision.FP32, "sgd-momentum", False) for w in ("resnet50", "resnet18")}


def test_generations_are_architecture_families() -> None:
    catalog = load_catalog()

    def gen(gpu: str) -> str:
        m = map_row(_row("resnet50", gpu=gpu))
        assert isinstance(m, MappedRow)
        return generation(m, catalog)

    assert gen("V100-SXM2-16GB") == "Volta"
    assert gen("A100-SXM4-80GB") == gen("RTX-3090") == "Ampere"  # one generation, held out together
    assert gen("H100-SXM5-80GB") == gen("GH200-96GB") == "Hopper"
    assert generation(MappedRow(_row("resnet50", gpu="X1-PCIe"), "resnet50", "fp32", "adamw", 8, None, False)) == "X1"


def test_a_generation_alone_in_the_data_falls_back_to_the_defaults() -> None:
    catalog = load_catalog()
    m = map_row(_row("resnet18", gpu="L4"))
    assert isinstance(m, MappedRow)
    fits = held_out([m], catalog, ProfileCache())
    assert list(fits) == ["Ada"] and fits["Ada"].source.startswith("defaults (no single-GPU row outside Ada")


def _result(device: str, device_name: str, median_s: float, **overrides: object) -> BenchResult:
    return stored_result(device, device_name, median_s, batch=2, image_size=64, optimizer="sgd", **overrides)


def test_every_stored_measurement_is_predicted_or_says_why_not(tmp_path: Path) -> None:
    from gpuwise.hardware.local import cpu_model, machine_key
    from gpuwise.store import open_store

    catalog = load_catalog()
    db = tmp_path / "results.db"
    cpu = Ceilings(device="cpu", device_name=cpu_model(), matmul_tflops={"float32": 0.5}, memory_gbps=10.0,
                   measured_at="2026-01-01T00:00:00+00:00")
    h100 = catalog.get("H100-SXM5-80GB").device_names[0]
    with open_store(db) as store:
        store.put_ceilings(cpu, machine_key())
        store.add(_result("cpu", cpu_model(), 0.2))
        store.add(_result("cuda:0", h100, 0.004))
        store.add(_result("cuda:0", h100, 0.004, num_devices=2, origin="train"))
        store.add(_result("cuda:0", "Some Unknown GPU", 0.01))
        store.add(_result("cpu", "Another CPU", 0.2))
        store.add(_result("cpu", cpu_model(), 0.2, num_devices=2, origin="train"))
    out = local_checks(catalog, db)
    assert out["store"] == str(db)
    predicted = {(c.device, c.result.num_devices) for c in out["local"]}
    assert predicted == {(f"your CPU ({cpu_model()})", 1), ("H100-SXM5-80GB", 1), ("2× H100-SXM5-80GB", 2)}
    reasons = sorted(why for _, why in out["local_skipped"])
    assert len(reasons) == 3
    assert any("Some Unknown GPU is not a catalog GPU" in why for why in reasons)
    assert any("no calibration of that CPU" in why for why in reasons)
    assert any("2 CPU processes" in why for why in reasons)
    for c in out["local"]:
        assert c.predicted_step_s > 0
        assert c.error == pytest.approx(c.result.timing.median_s / c.predicted_step_s - 1)
    assert set(out["by_device"]) == {f"your CPU ({cpu_model()})", "H100-SXM5-80GB", "2× H100-SXM5-80GB"}


def test_an_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    out = local_checks(load_catalog(), tmp_path / "results.db")
    assert out["local"] == () and out["local_skipped"] == ()


def test_the_local_section_renders_and_says_what_is_held_out(tmp_path: Path) -> None:
    from rich.console import Console

    from gpuwise.cli.validate import render_local
    from gpuwise.hardware.local import cpu_model, machine_key
    from gpuwise.store import open_store
    from gpuwise.validate import ErrorStats, Validation

    def validation(db: Path) -> Validation:
        nan = ErrorStats(0, float("nan"), float("nan"))
        return Validation(rows=(), skipped=(), pairs=(), by_gpu={}, by_workload={}, by_family={}, by_gpu_count={},
                          overall=nan,
                          cross_gpu={}, fits={}, **local_checks(load_catalog(), db))

    console = Console(record=True, width=140)
    render_local(validation(tmp_path / "empty.db"), console, show_rows=True)
    assert "no measurements yet; `gpuwise bench WORKLOAD` adds one" in " ".join(console.export_text().split())

    db = tmp_path / "results.db"
    with open_store(db) as store:
        store.put_ceilings(Ceilings(device="cpu", device_name=cpu_model(), matmul_tflops={"float32": 0.5},
                                    memory_gbps=10.0, measured_at="2026-01-01T00:00:00+00:00"), machine_key())
        store.add(_result("cpu", cpu_model(), 0.2))
        store.add(_result("cuda:0", "Some Unknown GPU", 0.01))
    console = Console(record=True, width=140)
    render_local(validation(db), console, show_rows=True)
    text = " ".join(console.export_text().split())
    assert f"your CPU ({cpu_model()})" in text and "200.0 ms" in text
    assert "1 measurements predicted, 1 not" in text and "not held out" in text
    assert "not predicted: result 2 (resnet18 on Some Unknown GPU)" in text


def test_every_generation_sums_the_fitted_rows_and_the_other_files_on_the_same_pairs() -> None:
    """Issue 12's table: each generation over every shipped file, then all of them; SUSPECT rows left out, every
    method on the same pairs."""
    from gpuwise.validate import ALL, DLE_SOURCE, METHODS, MODEL, PEAK, OtherFile, PairCheck, RowCheck, stats
    from gpuwise.validate import every_generation as combine

    def check(gpu: str, generation: str, predicted: float, notes: str = "") -> RowCheck:
        return RowCheck(_row("resnet50", gpu=gpu, notes=notes), "resnet50", predicted, generation, generation)

    checks = [check("V100-SXM2-16GB", "Volta", 110.0), check("A100-SXM4-80GB", "Ampere", 80.0),
              check("A100-SXM4-80GB", "Ampere", 300.0, "SUSPECT: logged twice")]
    pairs = [PairCheck("resnet50", "", "V100-SXM2-16GB", "A100-SXM4-80GB", 200.0, 210.0, 400.0, 260.0, 250.0,
                       "Ampere")]
    cross = {name: (0.1, -0.3) for name in METHODS}
    others = [OtherFile("Ampere", "GeForce and Titan cards", "other.csv", stats([0.05, -0.4]), {}, "Ampere",
                        (0.05, -0.4), cross),
              OtherFile("Hopper", "MLPerf Training", "mlperf.csv", stats([0.3]), {}, None, (0.3,), {})]
    found = combine(checks, pairs, others)
    assert list(found) == ["Volta", "Ampere", "Hopper", ALL]
    volta, ampere = checks[0].error, checks[1].error
    assert found["Ampere"].absolute == stats([ampere, 0.05, -0.4])  # the SUSPECT row is not counted
    assert found["Ampere"].sources == (DLE_SOURCE, "GeForce and Titan cards")
    assert found["Ampere"].cross_gpu[MODEL] == stats([pairs[0].errors()[MODEL], 0.1, -0.3])
    assert found["Ampere"].cross_gpu[PEAK] == stats([pairs[0].errors()[PEAK], 0.1, -0.3])
    assert found["Hopper"].cross_gpu[MODEL].count == 0
    assert found[ALL].absolute == stats([volta, ampere, 0.05, -0.4, 0.3])
    assert found[ALL].cross_gpu[MODEL].count == found[ALL].cross_gpu[PEAK].count == 3


@pytest.mark.slow
def test_the_readme_command_end_to_end(tmp_path: Path) -> None:
    """`gpuwise validate --json` on the shipped rows and an empty store (about 45 s): every mapped row is
    predicted by the constants fitted without its generation, and the statistics are of those rows."""
    import json

    result = CliRunner().invoke(get_app(), ["validate", "--json", "--db", str(tmp_path / "results.db")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # A fit per generation of any shipped file: the kernel constants fitted without it where the
    # DeepLearningExamples rows have it (Volta, Ampere), the shipped ones otherwise; every other generation's
    # scale, never its own.
    assert set(data["fits"]) == {"Volta", "Turing", "Ampere", "Ada", "Hopper", "Blackwell"}
    for g, f in data["fits"].items():
        shared = f"fitted without {g}" if g in ("Volta", "Ampere") else f"the shipped constants ({g} not among"
        assert f["source"].startswith(shared)
        assert g not in f["generation_scale"] and len(f["generation_scale"]) == 5
    rows = data["rows"]
    assert rows and {r["fitted_without"] for r in rows} == {"Volta", "Ampere"}
    # The other shipped files, each row by the constants fitted without its generation, and every generation
    # summed up over all of them.
    others = {(n["generation"], n["source"]): n for n in data["other_files"]}
    assert {"Turing", "Ampere", "Ada", "Hopper", "Blackwell"} <= {g for g, _ in others}
    assert others["Blackwell", "MLPerf Training"]["absolute"]["count"] >= 6
    assert others["Hopper", "MLPerf Training"]["cross_gpu"]["model"]["count"] > 0
    assert others["Ampere", "GeForce and Titan cards"]["fitted_without"] == "Ampere"
    assert others["Ada", "GeForce and Titan cards"]["fitted_without"] == "Ada"
    every = data["every_generation"]
    assert list(every) == ["Volta", "Turing", "Ampere", "Ada", "Hopper", "Blackwell", "all generations"]
    assert every["all generations"]["absolute"]["count"] == data["overall"]["count"] + sum(
        n["absolute"]["count"] for n in data["other_files"])
    assert every["Ampere"]["absolute"]["count"] == data["by_generation"]["Ampere"]["count"] + sum(
        n["absolute"]["count"] for n in data["other_files"] if n["generation"] == "Ampere")
    assert all(len({s["count"] for s in g["cross_gpu"].values()}) == 1 for g in every.values())
    for r in rows:
        assert r["fitted_without"] == ("Volta" if r["gpu"].startswith("V100") else "Ampere")
        assert r["error"] == pytest.approx(r["predicted"] / r["measured"] - 1)
    suspect = {p.line for p in load_published() if p.suspect}
    kept = [r for r in rows if r["line"] not in suspect]
    assert len(kept) < len(rows)  # the shipped file has SUSPECT rows: listed, kept out of the statistics
    assert data["overall"]["count"] == len(kept)
    assert data["cross_gpu"]["model"]["count"] == data["cross_gpu"]["bandwidth ratio"]["count"] > 0
    # Every baseline on the same pairs, overall and by the generation predicted (B's, held out of the fit).
    from gpuwise.validate import BLEND, METHODS

    assert list(data["cross_gpu"]) == list(METHODS) and data["cross_gpu"][BLEND]["count"] == len(data["pairs"])
    assert set(data["cross_gpu_by_generation"]) == {"Volta", "Ampere"}
    assert sum(m[BLEND]["count"] for m in data["cross_gpu_by_generation"].values()) == len(data["pairs"])
    assert all(p["generation"] != ("Volta" if p["from_gpu"].startswith("V100") else "Ampere") for p in data["pairs"])
    assert sum(s["count"] for s in data["by_generation"].values()) == len(kept)
    assert data["mode"] == "held-out"
    assert data["local"] == {"store": str(tmp_path / "results.db"), "by_device": {}, "rows": [], "skipped": []}


@pytest.mark.parametrize(
    ("label", "precision"),
    [("FP32", "fp32"), ("tf32", "tf32"), ("AMP-FP16", "amp-fp16"), ("Mixed Precision", "amp-fp16"),
     ("FP16", "amp-fp16"), ("AMP-BF16", "amp-bf16"), ("BF16", "amp-bf16"), ("amp_bf16", "amp-bf16"),
     ("AMP BF16", "amp-bf16"), ("bf16-mixed", "amp-bf16"), ("16-mixed", "amp-fp16"), ("mixed_precision", "amp-fp16"),
     ("AMP (BF16)", "amp-bf16")],
)
def test_precision_labels_of_published_tables(label: str, precision: str) -> None:
    m = map_row(_row("resnet50", precision=label))
    assert isinstance(m, MappedRow) and m.precision == precision


@pytest.mark.parametrize(("written", "unit"), [
    ("images/s", "images/s"), ("images/sec", "images/s"), ("img/s", "images/s"), ("Images per second", "images/s"),
    ("seq/s", "sequences/s"), ("sequences/second", "sequences/s"), ("tokens/sec", "tokens/s"), ("tok/s", "tokens/s"),
    ("samples/sec", "samples/s"), (" utterances/s ", "utterances/s"), ("TFLOP/s", "tflop/s"), ("ms/step", "ms/step"),
])
def test_throughput_units_as_tables_write_them(tmp_path: Path, written: str, unit: str) -> None:
    f = tmp_path / "mine.csv"
    f.write_text(f"{HEADER}\nresnet50,image classification,L4,1,AMP-FP16,64,700,{written},my run,\n")
    (row,) = load_published(f)
    assert row.unit == unit


@pytest.mark.parametrize("notes", ["seq len 512", "sequence length 512", "seq_len=512", "max_seq_len: 512"])
def test_a_zoo_rows_sequence_length_as_files_spell_it(notes: str) -> None:
    m = map_row(_row("gpt2", unit="tokens/s", notes=notes))
    assert isinstance(m, MappedRow) and m.seq_len == 512


def test_an_unknown_unit_is_named_and_an_llm_foundry_precision_maps(tmp_path: Path) -> None:
    assert map_row(_row("resnet50", unit="ms/step")) == "unit ms/step is not images/s, samples/s or tokens/s"
    run = map_llm_run(_row("mpt-7b", precision="amp_fp8", unit="tokens/s",
                           notes="seq len 2048; strategy fsdp; activation checkpointing full; compile no"))
    assert not isinstance(run, str) and run.fp8
    run = map_llm_run(_row("mpt-7b", precision="amp_bf16", unit="tokens/s",
                           notes="seq len 2048; strategy fsdp; activation checkpointing full; compile no"))
    assert not isinstance(run, str) and not run.fp8


def test_fp8_rows_are_skipped_with_the_reason() -> None:
    assert map_row(_row("resnet50", precision="FP8")) == "precision FP8 is not one gpuwise models"


def test_gpus_are_found_by_catalog_name_or_device_name() -> None:
    catalog = load_catalog()
    h100 = catalog.get("H100-SXM5-80GB").device_names[0]
    rows = [_row("resnet50", gpu="h100-sxm5-80gb"), _row("resnet50", gpu=h100), _row("resnet50", gpu="X9000")]
    mapped, skipped = mapped_rows(rows, catalog)
    assert [m.row.gpu for m in mapped] == ["H100-SXM5-80GB", "H100-SXM5-80GB"]
    assert [why for _, why in skipped] == ["GPU X9000 is not in the catalog (add it with --catalog)"]


def test_gpus_are_found_as_tables_write_them_and_an_ambiguous_name_says_its_candidates() -> None:
    """``Catalog.match_written``: brand words, case, separators and a missing detail do not matter; a
    name that fits several boards is skipped with them, one that names another card ("Ti") is unknown."""
    catalog = load_catalog()
    written = ["A100 80GB SXM4", "Tesla V100-SXM2-16GB", "GeForce RTX 3090", "RTX A6000", "H100 80GB PCIe Gen5",
               "A100 PCIe", "RTX 3090 Ti"]
    mapped, skipped = mapped_rows([_row("resnet50", gpu=g) for g in written], catalog)
    assert [m.row.gpu for m in mapped] == ["A100-SXM4-80GB", "V100-SXM2-16GB", "RTX-3090", "RTX-A6000",
                                           "H100-PCIe-80GB"]
    assert [why for _, why in skipped] == [
        "GPU A100 PCIe could be any of A100-PCIe-40GB, A100-PCIe-80GB: write the catalog name in the gpu column",
        "GPU RTX 3090 Ti is not in the catalog (add it with --catalog)",
    ]


@pytest.mark.parametrize(("written", "meant"), [
    ("H100 SXM", ["H100-SXM5-80GB", "H100-SXM5-96GB"]), ("V100 16GB", ["V100-SXM2-16GB", "V100-PCIe-16GB"]),
    ("4090", "RTX-4090"), ("GH200", "GH200-96GB"), ("RTX 6000", []), ("RTX 2080", []), ("L40", []), ("80GB", []),
    ("NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"), ("Instinct MI300X", "MI300X"),
])
def test_written_gpu_names(written: str, meant: str | list[str]) -> None:
    found = load_catalog().match_written(written)
    assert (found.name if not isinstance(found, list) else [g.name for g in found]) == meant


@pytest.mark.parametrize(("model", "task", "workload"), [
    ("ResNet-50", "", "resnet50"), ("ResNet50 v1.5", "", "resnet50"), ("SSD", "", "ssd300"),
    ("gnmt_v2", "", "gnmt"), ("bert_large_squad", "", "bert-large-squad"),
    ("BERT-Base", "SQuAD v1.1", "bert-base-squad"), ("EfficientNet-B0", "", "efficientnet_b0"),
])
def test_models_are_found_as_tables_spell_them(model: str, task: str, workload: str) -> None:
    unit = {"ssd300": "images/s", "gnmt": "tokens/s"}.get(workload, "sequences/s" if "bert" in workload else "images/s")
    m = map_row(_row(model, task=task, unit=unit))
    assert isinstance(m, MappedRow) and m.workload == workload, m


def test_a_model_is_predicted_alike_however_it_is_spelt() -> None:
    """A zoo model NVIDIA's recipe trains takes the recipe's optimizer, as the row naming the recipe does
    (GNMT: plain Adam, one kernel per elementwise op); notes that name one win; a zoo model without a recipe
    keeps adamw; nothing that names no model is guessed."""
    for names, optimizer, fused in ((("resnet50v1.5", "ResNet50 v1.5", "resnet50"), "sgd-momentum", True),
                                    (("GNMT v2 (8-layer LSTM enc/dec)", "gnmt_v2", "GNMT"), "adam", False)):
        mapped = [map_row(_row(n, unit="tokens/s" if "gnmt" in n.lower() else "images/s")) for n in names]
        assert {(m.optimizer, m.fused_optimizer) for m in mapped if isinstance(m, MappedRow)} == {(optimizer, fused)}
    named = map_row(_row("gnmt", unit="tokens/s", notes="optimizer adamw"))
    assert isinstance(named, MappedRow) and (named.optimizer, named.fused_optimizer) == ("adamw", True)
    gpt2 = map_row(_row("gpt2", unit="tokens/s"))
    assert isinstance(gpt2, MappedRow) and gpt2.optimizer == "adamw"
    # A plain training script steps torch.optim eagerly: its notes say so, the row is priced so.
    for notes in ("optimizer sgd-momentum, eager optimizer", "Eager optimizer"):
        eager = map_row(_row("resnet50", unit="images/s", notes=notes))
        assert isinstance(eager, MappedRow) and (eager.optimizer, eager.fused_optimizer) == ("sgd-momentum", False)
    assert map_row(_row("TransformerXL", unit="tokens/s")) == "no zoo workload with this model"


def test_squad_rows_step_the_optimizer_nvidias_run_squad_steps() -> None:
    """run_squad.py steps apex FusedAdam under --fp16 and its own BertAdam, a Python loop of elementwise ops,
    in FP32/TF32; pre-training steps a fused LAMB at every precision."""
    def fused(precision: str, task: str = "fine-tuning SQuAD v1.1", notes: str = "") -> bool:
        m = map_row(_row("BERT-large", gpu="A100-SXM4-80GB", task=task, unit="sequences/s", precision=precision,
                         notes=notes))
        assert isinstance(m, MappedRow), m
        return m.fused_optimizer

    assert [fused(p) for p in ("TF32", "FP32", "AMP-FP16")] == [False, False, True]
    assert fused("TF32", task="pre-training phase 1", notes="seq len 128")


def test_one_optimizer_rule_for_every_spelling() -> None:
    """A SQuAD row spelt as the zoo spells it steps run_squad.py's optimizer as the row naming the recipe
    does, and ``eager optimizer`` in the notes is read on a row that names an NVIDIA recipe too."""
    def fused(model: str, precision: str, notes: str = "", task: str = "", unit: str = "sequences/s") -> bool:
        m = map_row(_row(model, gpu="A100-SXM4-80GB", task=task, unit=unit, precision=precision, notes=notes))
        assert isinstance(m, MappedRow), m
        return m.fused_optimizer

    for model in ("bert_large_squad", "bert-large-squad"):
        assert [fused(model, p) for p in ("TF32", "FP32", "AMP-FP16")] == [False, False, True]
        assert fused(model, "TF32", notes="optimizer adamw")  # a named optimizer is fused
    assert fused("resnet50v1.5", "AMP-FP16", unit="images/s")
    assert not fused("resnet50v1.5", "AMP-FP16", notes="eager optimizer", unit="images/s")
    assert not fused("BERT-large", "AMP-FP16", task="SQuAD v1.1", notes="eager optimizer")


def test_notes_say_fp8_layers_and_fused_kernels() -> None:
    """``FP8 layers`` and ``fused elementwise kernels`` in a row's notes set those pipeline features, on any
    spelling of the model; FP8 layers beside a precision that is not AMP is a reason, not a guess."""
    def mapped(notes: str, precision: str = "AMP-FP16") -> MappedRow | str:
        return map_row(_row("BERT-large (MLPerf, packed sequences)", unit="sequences/s", precision=precision,
                            notes=notes))

    m = mapped("FP8 layers (use_transformer_engine2=True in the log's arguments); fused elementwise kernels; "
               "16-bit model, 16-bit gradients reduced after backward")
    assert isinstance(m, MappedRow) and (m.fp8_layers, m.fused_elementwise, m.sync_after_backward,
                                         m.half_model) == (True,) * 4
    assert "a 16-bit model runs 16-bit math" in str(mapped("16-bit model", precision="FP32"))
    m = mapped("16-bit layers, no Transformer Engine FP8 (use_transformer_engine2=False in the log's arguments)")
    assert isinstance(m, MappedRow) and (m.fp8_layers, m.fused_elementwise) == (False, False)
    assert "give the row's precision as AMP-FP16 or AMP-BF16" in str(mapped("FP8 layers", precision="TF32"))
    zoo = map_row(_row("resnet50", notes="fused elementwise kernels"))
    assert isinstance(zoo, MappedRow) and zoo.fused_elementwise and not zoo.fp8_layers


def test_nvidias_bert_recipe_and_the_notes_write_attention_out() -> None:
    """NVIDIA's BERT (DeepLearningExamples modeling.py) writes attention out in every row that names it,
    pre-training and SQuAD; a row naming a zoo workload runs the zoo's fused attention unless its notes say
    ``attention written out``; of the MLPerf rows, the L40S runs (``--unpad`` without FMHA) did."""
    def mapped(model: str, notes: str = "seq len 128", task: str = "pre-training", precision: str = "AMP-FP16"
               ) -> MappedRow:
        m = map_row(_row(model, task=task, unit="sequences/s", notes=notes, precision=precision))
        assert isinstance(m, MappedRow)
        return m

    def written(model: str, notes: str = "seq len 128", task: str = "pre-training") -> bool:
        return mapped(model, notes, task).attention_written_out

    assert written("BERT-large") and written("BERT-base", task="SQuAD v1.1", notes="")
    # Pre-training scripts the model (nvFuser) and .half()s it under --fp16; SQuAD's apex O2 casts it, fuses nothing.
    pretraining, squad = mapped("BERT-large"), mapped("BERT-large", task="SQuAD v1.1", notes="")
    assert (pretraining.half_model, pretraining.fused_elementwise, squad.half_model, squad.fused_elementwise) == (
        True, True, True, False)
    tf32 = mapped("BERT-large", precision="TF32")
    assert (tf32.half_model, tf32.fused_elementwise, tf32.attention_written_out) == (False, True, True)
    assert not written("bert-large-squad", notes="") and not written("bert-large", notes="")
    assert written("bert-large-squad", notes="attention written out (my eager run)")
    rows = load_published(DATA / "published_mlperf_training.csv")
    mapped = [m for r in rows if isinstance(m := map_row(r), MappedRow)]
    assert {m.row.gpu for m in mapped if m.attention_written_out} == {"L40S"}
    assert all(m.workload == "bert-large" for m in mapped if m.attention_written_out)


def test_timm_models_channels_first_and_image_size_in_a_file_of_your_own() -> None:
    """timm's benchmark tables name timm models: ``timm:NAME``, or a bare name timm has and the zoo lacks, is that
    model (the zoo's own name wins: resnet18 is torchvision's); ``NCHW`` keeps an AMP convnet channels-first
    (timm's benchmark.py runs without --channels-last); ``img size N`` sets the input size."""
    pytest.importorskip("timm")
    from gpuwise.predict.fit import row_pipeline, row_profile

    def mapped(model: str, notes: str = "") -> MappedRow | str:
        return map_row(_row(model, gpu="RTX-4090", notes=notes))

    timm_row, bare, zoo = mapped("timm:resnet18"), mapped("convnext_atto", "img size 160"), mapped("resnet18", "NCHW")
    assert isinstance(timm_row, MappedRow) and timm_row.workload == "timm:resnet18"
    assert isinstance(bare, MappedRow) and (bare.workload, bare.image_size) == ("timm:convnext_atto", 160)
    assert isinstance(zoo, MappedRow) and zoo.workload == "resnet18" and zoo.channels_first
    assert "unknown timm model 'nosuch'" in str(mapped("timm:nosuch"))
    profiles = ProfileCache()
    p = row_profile(zoo, profiles)
    assert not row_pipeline(zoo, p).channels_last
    default = mapped("resnet18")
    assert isinstance(default, MappedRow) and row_pipeline(default, p).channels_last  # tuned containers: NHWC
    assert row_profile(bare, profiles).image_size == 160


def test_channels_last_at_every_precision_in_a_rows_notes() -> None:
    """"channels-last at every precision" puts a TF32/FP32 convnet in NHWC (no cuDNN transposes around its tensor-core
    convolutions): timm's benchmark.py with --channels-last, say. A bare "NHWC" does not (the DLE ConvNets rows'
    "AMP uses NHWC" is about their AMP runs); both layouts at once is an error that says so. The shipped rows
    keep the reading the constants were fitted with (none NHWC without AMP; RESULTS.md says why)."""
    from gpuwise.predict.fit import row_pipeline, row_profile

    def mapped(notes: str, precision: str = "TF32") -> MappedRow | str:
        return map_row(_row("resnet18", gpu="A100-SXM4-80GB", precision=precision, notes=notes))

    last, plain, amp_note = mapped("channels-last at every precision"), mapped(""), mapped("AMP uses NHWC")
    assert isinstance(last, MappedRow) and last.channels_last
    assert isinstance(plain, MappedRow) and not plain.channels_last
    assert isinstance(amp_note, MappedRow) and not amp_note.channels_last
    p = row_profile(plain, ProfileCache())
    assert row_pipeline(last, p).channels_last and not row_pipeline(plain, p).channels_last
    both = mapped("NCHW; NHWC at every precision")
    assert isinstance(both, str) and "both layouts" in both
    shipped = [m for r in load_published(DATA / "published_training_throughput.csv")
               if isinstance(m := map_row(r), MappedRow)]
    assert shipped and not any(m.channels_last for m in shipped)


def test_a_rows_node_shape_and_network_set_its_ring() -> None:
    """"N nodes x M" (or "M GPUs per node") and "network N Gb/s per GPU" in a row's notes: a PCIe card's ring
    leaves its node there (Clemson's MLPerf A100 PCIe runs, 2 per host: their all-reduce crosses HDR100 between
    every pair); an NVLink board's ring keeps its 8-GPU domain (a GB200 NVL72 spans its rack, not its trays)."""
    from gpuwise.predict.fit import row_gpus_per_node

    catalog = load_catalog()

    def mapped(gpu: str, notes: str, num_gpus: int = 32) -> MappedRow:
        m = map_row(_row("BERT-large", gpu=gpu, unit="sequences/s", notes=f"seq len 128; {notes}", num_gpus=num_gpus))
        assert isinstance(m, MappedRow)
        return m

    pcie = mapped("A100-PCIe-80GB", "(16 node(s) x 2 NVIDIA A100 - PCIe - 80 GB); network 100 Gb/s per GPU")
    assert (pcie.gpus_per_node, pcie.network_gbits) == (2, 100.0)
    assert row_gpus_per_node(pcie, catalog.get("A100-PCIe-80GB")) == 2
    assert mapped("L40S", "16 GPUs per node", num_gpus=16).gpus_per_node == 16
    gb200 = mapped("GB200", "(8 node(s) x 4 NVIDIA Blackwell GPU (GB200))")
    assert gb200.gpus_per_node == 4 and row_gpus_per_node(gb200, catalog.get("GB200")) == 8
    plain = mapped("A100-PCIe-80GB", "")
    assert (plain.gpus_per_node, plain.network_gbits) == (None, None)
    assert row_gpus_per_node(plain, catalog.get("A100-PCIe-80GB")) == 8
    # At 100 Gb/s per GPU the PCIe ring (parallel.PCIE_RING_EFFICIENCY of the link) binds in hosts of 2 and of 8
    # alike; on a thinner network the hosts of 2 send more of the ring through it.
    profiles = ProfileCache()
    eff = shipped_efficiency()
    thin = replace(pcie, network_gbits=25.0)
    two = predict_row(thin, catalog, eff, profiles)
    assert two < predict_row(replace(thin, gpus_per_node=8), catalog, eff, profiles)


def test_mlperf_rows_run_fp8_where_their_configs_say() -> None:
    """NVIDIA's MLPerf BERT ran Transformer Engine's FP8 layers on every Hopper and Blackwell submission
    (--use_transformer_engine2), 16-bit on the L40S and A100 ones; every MLPerf row fused its elementwise ops."""
    path = DATA / "published_mlperf_training.csv"
    mapped = [m for r in load_published(path) if isinstance(m := map_row(r), MappedRow)]
    bert = [m for m in mapped if m.workload == "bert-large"]
    assert bert and all(m.fused_elementwise for m in mapped)
    assert {m.row.gpu for m in bert if m.fp8_layers} == {"H100-SXM5-80GB", "H100-PCIe-80GB", "H200-SXM-141GB",
                                                         "B200", "GB200"}
    assert {m.row.gpu for m in bert if not m.fp8_layers} == {"L40S", "A100-PCIe-80GB"}
    assert not any(m.fp8_layers for m in mapped if m.workload == "resnet50")
    # apex DistributedFusedLAMB without --dwu-overlap-reductions in every BERT run; the RN50 rows (Horovod) say
    # nothing of theirs and keep DDP's overlapped sync.
    assert all(m.sync_after_backward == m.half_model == (m.workload == "bert-large") for m in mapped)


# ------------------------------------------------------------------ --frozen and the baselines (issue 12)

FROZEN_CSV = (
    f"{HEADER}\n"
    "resnet18,x,A100-SXM4-80GB,1,AMP-FP16,8,700,images/s,my run,\n"  # line 2: Ampere
    "resnet18,x,NVIDIA H100 80GB HBM3,1,AMP-FP16,8,1000,images/s,my run,\n"  # line 3: torch's name -> Hopper
    "resnet18,x,L4,1,FP8,8,300,images/s,my run,\n"
    "resnet18,x,X9000,1,AMP-FP16,8,300,images/s,my run,\n"
    "resnet18,x,L4,1,AMP-FP16,8,300,furlongs/s,my run,\n"
    "nosuchmodel,x,L4,1,AMP-FP16,8,300,images/s,my run,\n"
    "resnet18,x,L4,1,AMP-FP16,,300,images/s,my run,\n"
    "resnet18,x,L4,1,AMP-FP16,8,300,images/s,my run,seq len 128\n"  # traced: --seq-len does not apply
    "resnet18,x,My-B1,1,AMP-FP16,8,2000,images/s,my run,SUSPECT: throttled\n"  # listed, never counted
)
FROZEN_SKIPS = {
    4: "precision FP8 is not one gpuwise models",
    5: "GPU X9000 is not in the catalog (add it with --catalog)",
    6: "unit furlongs/s is not images/s, samples/s or tokens/s",
    7: "no zoo workload with this model",
    8: "the source gives no batch size",
    9: "cannot profile it: --seq-len does not apply to workload 'resnet18'",
}
MY_CATALOG = (
    '[My-B1]\nvendor = "nvidia"\narchitecture = "Blackwell (test)"\nmemory_gb = 96\nmemory_bandwidth_gbps = 4000\n'
    "fp32_tflops = 60\ntf32_tflops = 500\nfp16_tflops = 1000\nbf16_tflops = 1000\n"
)


def _no_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frozen validation must fit nothing: every way into the fit raises."""
    import gpuwise.predict.fit as fit_module
    import gpuwise.validate as validate_module

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate --frozen fitted something")

    for module, name in ((fit_module, "fit"), (fit_module, "least_squares"), (fit_module, "held_out"),
                         (validate_module, "held_out")):
        monkeypatch.setattr(module, name, refuse)


def test_frozen_predicts_every_row_with_the_shipped_constants_and_lists_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's rows only, predicted by the shipped constants, fitting nothing; each row's predicted,
    measured and signed error in --json; every row not predicted listed with its reason."""
    import json

    from gpuwise.predict.fit import shipped_efficiency
    from gpuwise.validate import BLEND, METHODS

    _no_fitting(monkeypatch)
    f = tmp_path / "mine.csv"
    f.write_text(FROZEN_CSV)
    (tmp_path / "gpus.toml").write_text(MY_CATALOG)
    result = CliRunner().invoke(get_app(), ["validate", "--frozen", "--published", str(f), "--json",
                                            "--catalog", str(tmp_path / "gpus.toml")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mode"] == "frozen" and data["shipped_rows_included"] is False
    assert data["constants"] == {"shipped": shipped_efficiency().source}
    rows = data["rows"]
    assert [r["line"] for r in rows] == [f"{f}:2", f"{f}:3", f"{f}:10"]  # no shipped row, none dropped
    assert [(r["gpu"], r["generation"], r["suspect"]) for r in rows] == [
        ("A100-SXM4-80GB", "Ampere", False), ("H100-SXM5-80GB", "Hopper", False), ("My-B1", "Blackwell", True)]
    for r in rows:
        assert r["fitted_without"] is None and r["predicted"] > 0
        assert r["error"] == pytest.approx(r["predicted"] / r["measured"] - 1)
    assert [r["measured"] for r in rows] == [700.0, 1000.0, 2000.0]
    assert {int(s["line"].rsplit(":", 1)[1]): s["reason"][:len(FROZEN_SKIPS[int(s["line"].rsplit(":", 1)[1])])]
            for s in data["skipped"]} == FROZEN_SKIPS
    # The SUSPECT row is listed but counted nowhere: not in the statistics, not in a pair.
    assert data["overall"]["count"] == 2 and set(data["by_generation"]) == {"Ampere", "Hopper"}
    assert data["overall"]["median_abs_error"] == pytest.approx(
        sorted(abs(r["error"]) for r in rows[:2])[0] / 2 + sorted(abs(r["error"]) for r in rows[:2])[1] / 2)
    assert set(data["by_gpu"]) == {"A100-SXM4-80GB", "H100-SXM5-80GB"} and set(data["by_workload"]) == {"resnet18"}

    # Pairs among the user's rows: A100 -> H100 and back, each baseline on the same two pairs.
    pairs = {(p["from_gpu"], p["to_gpu"]): p for p in data["pairs"]}
    assert set(pairs) == {("A100-SXM4-80GB", "H100-SXM5-80GB"), ("H100-SXM5-80GB", "A100-SXM4-80GB")}
    catalog = load_catalog()
    a100, h100 = catalog.get("A100-SXM4-80GB"), catalog.get("H100-SXM5-80GB")
    up = pairs[("A100-SXM4-80GB", "H100-SXM5-80GB")]
    assert up["generation"] == "Hopper" and up["measured"] == 1000.0
    peak, bandwidth = h100.fp16_tflops / a100.fp16_tflops, h100.memory_bandwidth_gbps / a100.memory_bandwidth_gbps
    assert up["predicted"]["peak FLOP/s ratio"] == pytest.approx(700 * peak)
    assert up["predicted"]["bandwidth ratio"] == pytest.approx(700 * bandwidth)
    assert up["predicted"][BLEND] == pytest.approx(700 * peak**0.3 * bandwidth**0.7)
    assert up["predicted"]["model"] == pytest.approx(700 * rows[1]["predicted"] / rows[0]["predicted"])
    assert set(data["cross_gpu"]) == set(METHODS) and all(s["count"] == 2 for s in data["cross_gpu"].values())
    assert {g: m[BLEND]["count"] for g, m in data["cross_gpu_by_generation"].items()} == {"Ampere": 1, "Hopper": 1}
    assert data["cross_gpu_by_generation"]["Hopper"][BLEND]["median_abs_error"] == pytest.approx(
        abs(700 * peak**0.3 * bandwidth**0.7 / 1000 - 1))


def test_the_blend_baseline_by_hand() -> None:
    from gpuwise.validate import blend

    # 2^0.3 = 1.23114, 3^0.7 = 2.15767: 100 images/s on A -> 265.64 on B
    assert blend(100.0, peak_ratio=2.0, bandwidth_ratio=3.0) == pytest.approx(265.64, abs=0.01)
    assert blend(100.0, 1.0, 1.0) == 100.0


def test_statistics_group_by_generation_on_the_same_pairs() -> None:
    from gpuwise.validate import BANDWIDTH, BLEND, MODEL, PEAK, PairCheck, RowCheck, _summary

    def check(gpu: str, generation: str, predicted: float, notes: str = "") -> RowCheck:
        return RowCheck(_row("resnet18", gpu=gpu, notes=notes), "resnet18", predicted, None, generation)

    checks = [check("V100-SXM2-16GB", "Volta", 110.0), check("A100-SXM4-80GB", "Ampere", 80.0),
              check("A100-SXM4-40GB", "Ampere", 100.0), check("H100-SXM5-80GB", "Hopper", 500.0, "SUSPECT")]

    def pair(generation: str, model: float, peak: float, bandwidth: float, blend: float) -> PairCheck:
        return PairCheck("resnet18", "", "A", "B", 100.0, model, peak, bandwidth, blend, generation)

    pairs = [pair("Ampere", 110.0, 150.0, 95.0, 120.0), pair("Ampere", 130.0, 250.0, 85.0, 140.0),
             pair("Volta", 90.0, 50.0, 70.0, 60.0)]
    s = _summary(checks, pairs)
    assert {g: (e.count, e.median) for g, e in s["by_generation"].items()} == {
        "Ampere": (2, pytest.approx(0.1)), "Volta": (1, pytest.approx(0.1))}  # the SUSPECT Hopper row: nowhere
    assert s["overall"].count == 3
    ampere = s["cross_gpu_by_generation"]["Ampere"]
    assert {m: ampere[m].count for m in ampere} == {MODEL: 2, PEAK: 2, BANDWIDTH: 2, BLEND: 2}
    assert (ampere[MODEL].median, ampere[PEAK].median, ampere[BANDWIDTH].median, ampere[BLEND].median) == (
        pytest.approx(0.2), pytest.approx(1.0), pytest.approx(0.1), pytest.approx(0.3))
    assert s["cross_gpu_by_generation"]["Volta"][PEAK].median == pytest.approx(0.5)
    assert s["cross_gpu"][BLEND].count == 3 and s["cross_gpu"][BLEND].median == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frozen"], "validate --frozen has no rows to predict: give --published FILE"),
        (["--include-shipped"], "--include-shipped goes with --frozen"),
        (["--frozen", "--published", "{empty}"], r"has no rows to predict \(.*empty.csv has none\)"),
        (["--frozen", "--published", "{empty}", "--catalog", "{catalog}"],
         r"gpus.toml: entry 'My-B1', field 'memory_bandwidth_gbps': must be positive, got 0"),
    ],
)
def test_bad_frozen_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    import re

    (tmp_path / "empty.csv").write_text(f"{HEADER}\n")
    (tmp_path / "gpus.toml").write_text(MY_CATALOG.replace("memory_bandwidth_gbps = 4000", "memory_bandwidth_gbps = 0"))
    args = [a.format(empty=tmp_path / "empty.csv", catalog=tmp_path / "gpus.toml") for a in args]
    result = CliRunner().invoke(get_app(), ["validate", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and re.search(message, result.output), result.output


def test_frozen_text_lists_rows_skips_and_the_baselines_by_generation() -> None:
    from rich.console import Console

    from gpuwise.cli.validate import render
    from gpuwise.predict.fit import shipped_efficiency
    from gpuwise.validate import BLEND, PairCheck, RowCheck, Validation, _summary

    checks = (RowCheck(_row("resnet18", gpu="A100-SXM4-80GB", throughput=700.0), "resnet18", 770.0, None, "Ampere"),
              RowCheck(_row("resnet18", throughput=1000.0), "resnet18", 900.0, None, "Hopper"))
    pairs = (PairCheck("resnet18", "", "A100-SXM4-80GB", "H100-SXM5-80GB", 1000.0, 1100.0, 2000.0, 1500.0, 1200.0,
                       "Hopper"),)
    v = Validation(rows=checks, skipped=((_row("resnet18", gpu="X9000"), "GPU X9000 is not in the catalog"),),
                   pairs=pairs, fits={"shipped": shipped_efficiency()}, files=("mine.csv",), frozen=True,
                   include_shipped=False, **_summary(checks, pairs))
    console = Console(record=True, width=200)
    render(v, console, show_rows=False)  # frozen: the rows are always listed
    text = " ".join(console.export_text().split())
    assert "frozen validation of mine.csv: 2 rows predicted with the shipped constants" in text
    assert "nothing fitted; 1 rows skipped" in text
    assert "+10.0%" in text and "-10.0%" in text  # signed, per row
    assert "skipped line 2: resnet18 on X9000: GPU X9000 is not in the catalog" in text
    assert BLEND in text and "│ Hopper │ 1 │ 10.0% / 10.0% │ 100.0% / 100.0% │ 50.0% / 50.0% │ 20.0% / 20.0% │" in text


def test_one_prediction_of_a_measurement_as_plan_makes_it(tmp_path: Path) -> None:
    """``predict_result`` is what validate, train and the report compare: plan's option for the measurement's
    device and setting; the model alone by default, a stored measurement of the same setting where given."""
    from dataclasses import replace

    from gpuwise.plan import PredictConfig, predict
    from gpuwise.validate import predict_result

    catalog = load_catalog()
    bench = _result("cuda:0", catalog.get("H100-SXM5-80GB").device_names[0], 0.004)
    profiles = ProfileCache()
    alone = predict_result(bench, catalog, None, profiles)
    assert not isinstance(alone, str)
    assert (alone.device, alone.provenance) == ("H100-SXM5-80GB", "analytical")
    config = PredictConfig.of(workload="resnet18", gpu="H100-SXM5-80GB", batch_size=2, image_size=64, precision="fp32",
                           optimizer="sgd")
    option = predict(config, catalog, tmp_path / "empty.db", profiles=profiles)
    assert option.step is not None and alone.predicted_step_s == pytest.approx(option.step.model_compute_s)
    assert len(profiles) == 1  # predict found the profile predict_result made: one cache

    run = replace(bench, origin="train", timing=replace(bench.timing, median_s=0.005))
    stood_for = predict_result(run, catalog, None, profiles, measurements=[bench])
    assert not isinstance(stood_for, str) and stood_for.provenance == "measured here"
    assert stood_for.predicted_step_s == pytest.approx(0.004)
    assert stood_for.error == pytest.approx(0.005 / 0.004 - 1)

    many = predict_result(replace(bench, device="cpu", num_devices=2), catalog, None, profiles)
    assert many == "plan does not model 2 CPU processes"


def test_frozen_predicts_a_users_llm_runs_as_predict_does_and_says_why_not_for_the_rest(tmp_path: Path) -> None:
    """Rows with FSDP, activation checkpointing or FP8 layers are LLM runs: predicted through predict's own path
    with their strategy, recompute, compile and FP8 (the held-out fit cannot), each refusal with its reason."""
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.predict.fit import predict_llm_run, shipped_efficiency
    from gpuwise.predict.published import map_llm_run
    from gpuwise.predict.step import ProfileCache
    from gpuwise.validate import validate_frozen

    notes = "seq len 2048; strategy fsdp; activation checkpointing none; compile no"
    f = tmp_path / "runs.csv"
    f.write_text("\n".join([
        HEADER,
        f'tinyllama-1.1b,LM,A100-SXM4-40GB,16,AMP-BF16,8,384000,tokens/s,test,"{notes}"',
        f'tinyllama-1.1b,LM,A100-SXM4-40GB,16,FP8,8,384000,tokens/s,test,"{notes}"',
        f'tinyllama-1.1b,LM,A100-SXM4-40GB,16,AMP-BF16,8,187,samples/s,test,"{notes}"',
        'tinyllama-1.1b,LM,A100-SXM4-40GB,16,AMP-BF16,8,384000,tokens/s,test,'
        '"seq len 2048; strategy fsdp tp=2; activation checkpointing none"',
    ]) + "\n")
    profiles = ProfileCache()
    v = validate_frozen(published=[f], profiles=profiles)
    assert [(c.row.index, c.workload) for c in v.rows] == [(2, "tinyllama-1.1b")]
    run = map_llm_run(v.rows[0].row)
    assert not isinstance(run, str)
    option = predict_llm_run(run, shipped_efficiency(), profiles, load_catalog())
    assert v.rows[0].predicted == option.step.tokens_per_s  # type: ignore[union-attr]
    reasons = {r.index: why for r, why in v.skipped}
    assert "A100-SXM4-40GB has no FP8 tensor cores" in reasons[3]
    assert "tokens/s, not samples/s" in reasons[4]
    assert "tensor, context or pipeline parallel" in reasons[5]
