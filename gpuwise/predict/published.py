"""The published measurements shipped with gpuwise, mapped onto zoo workloads.

Every row is either mapped to a zoo workload with the same settings, or skipped with
its reason — never dropped silently.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError

if TYPE_CHECKING:
    from gpuwise.workloads import Workload

# NVIDIA's model names -> (zoo workload, the optimizer their recipe uses, as the closest gpuwise optimizer).
# Their recipes step a fused (apex multi-tensor) optimizer, except where ``_recipe_steps_eagerly`` says.
_EAGER_OPTIMIZER = {"gnmt"}
# A zoo row's notes that say its optimizer stepped as eager torch.optim does, one kernel per elementwise op.
EAGER_OPTIMIZER_NOTE = re.compile(r"\beager optimizer\b", re.IGNORECASE)
# A row's notes that say its run used NVIDIA Transformer Engine's FP8 layers (``Pipeline.fp8_layers``), as
# NVIDIA's MLPerf BERT does on GPUs with FP8 tensor cores; the rest of its step ran at the row's AMP precision.
FP8_LAYERS_NOTE = re.compile(r"\bfp8 layers\b", re.IGNORECASE)
# A row's notes that say its program fused the elementwise ops around its matrix products into few kernels
# (``Pipeline.fused_elementwise``), as NVIDIA's MLPerf implementations do.
FUSED_ELEMENTWISE_NOTE = re.compile(r"\bfused elementwise kernels\b", re.IGNORECASE)
# A row's notes that say its program reduced 16-bit gradients after backward (``Pipeline.sync_after_backward``).
SYNC_AFTER_BACKWARD_NOTE = re.compile(r"\b16-bit gradients reduced after backward\b", re.IGNORECASE)
# A row's notes that say its model ran in 16 bits without autocast (``model.half()``, fp32 master weights in the
# optimizer): profiled as FSDP2's mixed precision is (``low_precision_params``), no per-op casts.
HALF_MODEL_NOTE = re.compile(r"\b16-bit model\b", re.IGNORECASE)
# A row's notes that say its program wrote attention out (its own matrix products, softmax and dropout, no fused
# attention kernel): profiled so (``attention_written_out``). NVIDIA's BERT recipe (DeepLearningExamples
# PyTorch/LanguageModeling/BERT/modeling.py, ``BertSelfAttention``: bmm, scale, mask, softmax, dropout, bmm) does
# so in every row that names it; MLPerf BERT does so run ``--unpad`` without its FMHA kernels.
ATTENTION_WRITTEN_OUT_NOTE = re.compile(r"\battention written out\b", re.IGNORECASE)
# A row's notes that say its convolutions ran channels-first (PyTorch's default memory format, NCHW), not in the
# NHWC layout tuned AMP containers use (``Pipeline.channels_last``): timm's benchmark.py without --channels-last.
CHANNELS_FIRST_NOTE = re.compile(r"\b(nchw|channels[- ]first)\b", re.IGNORECASE)
# A row's notes that say its convolutions ran NHWC at every precision, FP32/TF32 included (tuned containers
# otherwise keep NCHW without AMP): timm's benchmark.py with --channels-last in FP32, say. (NVIDIA's SSD300 runs so
# by default, but its shipped rows are read NCHW without AMP: benchmarks/RESULTS.md, 2026-12-07 afternoon.)
CHANNELS_LAST_NOTE = re.compile(r"\b(nhwc|channels[- ]last) at every precision\b", re.IGNORECASE)
# A row's notes that give its system's shape, "N nodes x M GPUs" (MLPerf's notes: "2 nodes x 4 L40S",
# "(16 node(s) x 2 NVIDIA A100 ...)") or "M GPUs per node": a PCIe card's ring leaves its node there.
NODE_SHAPE_NOTE = re.compile(r"\b\d+ nodes?(?:\(s\))? x (\d+)\b|\b(\d+) GPUs per node\b", re.IGNORECASE)
# A row's notes that give its network between nodes, per GPU ("network 200 Gb/s per GPU"), where it is not the
# stated default for the GPU's class (``gpuwise.predict.parallel.default_network_gbits``).
NETWORK_NOTE = re.compile(r"\bnetwork (\d+(?:\.\d+)?) ?Gb/s per GPU\b", re.IGNORECASE)
# A row's notes that give the all-reduce bus bandwidth measured within its node ("busbw 9 GB/s", nccl-tests'
# all_reduce_perf at large sizes): its ring is priced at it, as ``predict --busbw`` prices one.
BUSBW_NOTE = re.compile(r"\bbusbw (\d+(?:\.\d+)?) ?GB/s\b", re.IGNORECASE)
# A row's notes that give its input images' size (a zoo or timm vision model at another resolution).
IMAGE_SIZE_NOTE = re.compile(r"\b(?:image|img) size (\d+)\b", re.IGNORECASE)
_MODELS = {
    "resnet50v1.5": ("resnet50", "sgd-momentum"),  # SGD with momentum 0.875
    # ResNet-50 v1 (stride 2 in the first 1x1 of a downsampling block, not the 3x3): torchvision's v1.5
    # differs by ~5% in throughput (DeepLearningExamples' ResNet50 v1.5 README); tf_cnn_benchmarks
    # trains it with SGD and momentum by default.
    "ResNet-50 (v1, tf_cnn_benchmarks)": ("resnet50", "sgd-momentum"),
    "efficientnet-b0": ("efficientnet_b0", "sgd-momentum"),  # RMSprop: one state tensor, like momentum
    "SSD300 (ResNet-50 backbone)": ("ssd300", "sgd-momentum"),
    "GNMT v2 (8-layer LSTM enc/dec)": ("gnmt", "adam"),
}
# MLPerf Training's BERT (NVIDIA's implementation, which every submitter runs) counts samples, one sequence of
# its Wikipedia phase-2 set each: packed into 512-token rows holding two on average (``average_packing_rate=2``,
# ``max_seq_length=512`` in the logs' argument lines) or trained unpadded. A sample is then about 256 tokens,
# with attention within its own sequence (the packed rows' attention is block-diagonal): bert-large at
# sequence length 256, its LAMB step (two state tensors per parameter, fused) as a fused AdamW's.
_MLPERF_BERT = "BERT-large (MLPerf, packed sequences)"
# BERT as NVIDIA's recipes and published tables name it (any case): SQuAD fine-tuning when the task says SQuAD
# (BertForQuestionAnswering, the zoo's bert-*-squad), else pre-training (masked LM + next sentence) at the
# notes' sequence length. A SQuAD row must never be predicted as pre-training: its step has no vocabulary-wide
# MLM head, and the zoo's pre-training shape is 128 tokens, not SQuAD's 384.
_BERT_SIZES = {"bert-base": "base", "bert-large": "large"}
_SQUAD_SEQ_LEN = 384
_NVIDIA_BERT = ("BERT-base", "BERT-large")  # pre-training rows so named state their sequence length; the zoo's
# own names (bert-base, bert-large) on a row that is not SQuAD are zoo rows (``_zoo_row``: its default shape)
_MLPERF_BERT_SEQ_LEN = 256
# The shipped file's labels, and the other names published tables give the same modes ("mixed
# precision" in NVIDIA's tables is FP16 AMP unless BF16 is named; llm-foundry's and Composer's amp_bf16;
# Lightning's bf16-mixed and 16-mixed), matched as ``_precision_key`` spells them.
_FP16, _BF16 = Precision.AMP_FP16, Precision.AMP_BF16
_PRECISIONS = {
    "fp32": Precision.FP32, "tf32": Precision.TF32, "32-true": Precision.FP32,
    "amp-fp16": _FP16, "amp": _FP16, "fp16": _FP16, "mixed-precision": _FP16, "16-mixed": _FP16, "fp16-mixed": _FP16,
    "amp-bf16": _BF16, "bf16": _BF16, "amp-(bf16)": _BF16, "mixed-precision-(bf16)": _BF16, "bf16-mixed": _BF16,
}
# An LLM run's FP8 linear layers beside bf16 (``_fp8``): "FP8", or llm-foundry's amp_fp8.
_FP8_PRECISIONS = ("fp8", "amp-fp8")


def _precision_key(text: str) -> str:
    """A precision label as ``_PRECISIONS`` keys it: lower case, runs of spaces and underscores as one hyphen
    ("AMP_BF16", "amp bf16" and "AMP-BF16" alike)."""
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def precision_of(label: str) -> Precision | None:
    """The precision a published label names, None where it is not one gpuwise models."""
    return _PRECISIONS.get(_precision_key(label))


# Throughput units as tables write them, as the rows carry them: "images/sec", "img/s", "sequences per second",
# "tok/s" are images/s, sequences/s, tokens/s.
_UNIT_NOUNS = {"img": "images", "image": "images", "seq": "sequences", "seqs": "sequences", "sequence": "sequences",
               "tok": "tokens", "token": "tokens", "sample": "samples", "utterance": "utterances"}


def canonical_unit(unit: str) -> str:
    """``unit`` as gpuwise writes throughput units (``images/s``, ``tokens/s``, ...): per second spelt
    ``/sec``, ``/second`` or ``per second``, and the noun singular or abbreviated, are read so; a unit that
    is not a count per second is returned as written (stripped), to be named as unknown."""
    text = re.sub(r"\s+", " ", unit.strip().lower())
    match = re.fullmatch(r"([a-z]+) ?(?:/ ?s|/ ?sec|/ ?second|per sec|per second)", text)
    if not match:
        return unit.strip()
    noun = match.group(1)
    return f"{_UNIT_NOUNS.get(noun, noun)}/s"


COLUMNS = ("model", "task", "gpu", "num_gpus", "precision", "batch_per_gpu", "throughput", "unit", "source", "notes")


@dataclass(frozen=True)
class PublishedRow:
    index: int  # line in the CSV, header = 1
    model: str
    task: str
    gpu: str
    num_gpus: int
    precision: str
    batch_per_gpu: int | None
    throughput: float
    unit: str
    source: str
    notes: str
    file: str = "shipped"  # "shipped" (gpuwise/data), or the path of a file the user gave

    @property
    def line(self) -> str:
        """Where the row is: its line in the shipped file, or ``file:line``."""
        return str(self.index) if self.file == "shipped" else f"{self.file}:{self.index}"

    @property
    def suspect(self) -> bool:
        return "SUSPECT" in self.notes


@dataclass(frozen=True)
class MappedRow:
    row: PublishedRow
    workload: str
    precision: Precision  # the file's name for it, parsed
    optimizer: str
    batch_size: int
    seq_len: int | None
    counts_tokens: bool  # throughput in tokens/s (else samples/s)
    fused_optimizer: bool = True  # the recipe's optimizer step is one multi-tensor kernel
    fp8_layers: bool = False  # Transformer Engine's FP8 layers (``FP8_LAYERS_NOTE``)
    fused_elementwise: bool = False  # the program's own fused elementwise kernels (``FUSED_ELEMENTWISE_NOTE``)
    sync_after_backward: bool = False  # 16-bit gradients reduced after backward (``SYNC_AFTER_BACKWARD_NOTE``)
    half_model: bool = False  # a 16-bit model without autocast (``HALF_MODEL_NOTE``)
    attention_written_out: bool = False  # no fused attention kernel (``ATTENTION_WRITTEN_OUT_NOTE``)
    channels_first: bool = False  # convolutions in NCHW even under AMP (``CHANNELS_FIRST_NOTE``)
    channels_last: bool = False  # convolutions in NHWC even without AMP (``CHANNELS_LAST_NOTE``)
    image_size: int | None = None  # the vision model's input size, where the notes give one (``IMAGE_SIZE_NOTE``)
    gpus_per_node: int | None = None  # the system's GPUs per node, where the notes give it (``NODE_SHAPE_NOTE``)
    network_gbits: float | None = None  # the network per GPU, where the notes give it (``NETWORK_NOTE``)
    busbw_gbs: float | None = None  # the ring's measured bus bandwidth in a node, from the notes (``BUSBW_NOTE``)


def load_published(path: Path | None = None) -> list[PublishedRow]:
    """The shipped measurements, or those of a CSV file with the same columns (``COLUMNS``)."""
    if path is None:
        text = resources.files("gpuwise.data").joinpath("published_training_throughput.csv").read_text()
        return _parse(text, "shipped")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        raise GpuwiseError(f"cannot read {path}: {why}: give a readable CSV file") from None
    return _parse(text, str(path))


def _parse(text: str, file: str) -> list[PublishedRow]:
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise GpuwiseError(f"{file}: missing column(s) {', '.join(missing)}: the header needs {','.join(COLUMNS)}")
    rows = []
    for i, r in enumerate(reader, start=2):
        where = f"{file}, line {i}"
        rows.append(
            PublishedRow(
                index=i, model=r["model"], task=r["task"], gpu=r["gpu"], num_gpus=_number(r, "num_gpus", int, where),
                precision=r["precision"], batch_per_gpu=_number(r, "batch_per_gpu", int, where, optional=True),
                throughput=_number(r, "throughput", float, where), unit=canonical_unit(r["unit"] or ""),
                source=r["source"],
                notes=r["notes"] or "", file=file,
            )
        )
    return rows


def _number(row: dict[str, str], column: str, kind: type[int] | type[float], where: str, *, optional: bool = False
            ) -> Any:
    """A positive number from a CSV cell, or one line naming the file, line and column to fix."""
    value = (row[column] or "").strip()
    if optional and not value:
        return None
    try:
        parsed = kind(value)
    except ValueError:
        parsed = None
    if parsed is None or not parsed > 0:
        raise GpuwiseError(f"{where}: column {column} must be a positive {kind.__name__}, got {value!r}: "
                           "fix the row or remove it")
    return parsed


# Names tables give the models gpuwise maps, spelt otherwise than the shipped file or the zoo spell them, matched
# on their letters and digits alone ("ResNet-50", "bert_large_squad", "EfficientNet-B0"); and two short names
# of NVIDIA's recipes.
_ALIASES = {"ssd": "SSD300 (ResNet-50 backbone)", "gnmtv2": "GNMT v2 (8-layer LSTM enc/dec)"}


def _letters(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def canonical_model(name: str) -> str:
    """The shipped file's or the zoo's name for a model a table spells otherwise (a recipe name before a zoo
    name of the same letters: "EfficientNet-B0" is NVIDIA's recipe); ``name`` itself when it is one already
    or none matches (a user's ``file.py:factory`` is never looked up)."""
    from gpuwise.workloads import list_workloads

    if name in _MODELS or name == _MLPERF_BERT or ":" in name:
        return name
    zoo = [w.name for w in list_workloads()]
    low = name.strip().lower()
    recipes = {m.lower(): m for m in _MODELS}
    if low in recipes:
        return recipes[low]
    if low in {w.lower() for w in zoo}:
        return name  # a zoo name in any case: the zoo looks it up so
    known = {_letters(w): w for w in zoo} | {_letters(m): m for m in _MODELS} | _ALIASES
    return known.get(_letters(name), name)


def map_row(row: PublishedRow) -> MappedRow | str:
    """The zoo workload and settings of a published row (its model as the shipped file or the zoo name it,
    ``canonical_model``), or why there is none."""
    m = _map_row(row)
    if isinstance(m, str):
        return m
    first, last = bool(CHANNELS_FIRST_NOTE.search(row.notes)), bool(CHANNELS_LAST_NOTE.search(row.notes))
    m = replace(m, fused_elementwise=m.fused_elementwise or bool(FUSED_ELEMENTWISE_NOTE.search(row.notes)),
                sync_after_backward=bool(SYNC_AFTER_BACKWARD_NOTE.search(row.notes)),
                half_model=m.half_model or bool(HALF_MODEL_NOTE.search(row.notes)),
                attention_written_out=m.attention_written_out or bool(ATTENTION_WRITTEN_OUT_NOTE.search(row.notes)),
                fp8_layers=bool(FP8_LAYERS_NOTE.search(row.notes)),
                channels_first=first, channels_last=last,
                gpus_per_node=_gpus_per_node(row.notes),
                network_gbits=float(net.group(1)) if (net := NETWORK_NOTE.search(row.notes)) else None,
                busbw_gbs=float(bus.group(1)) if (bus := BUSBW_NOTE.search(row.notes)) else None)
    if m.busbw_gbs == 0:
        return "the notes give a bus bandwidth of 0 GB/s: give the busbw all_reduce_perf measured, above zero"
    if first and last:
        return "the notes give both layouts (NCHW/channels-first and NHWC/channels-last at every precision): keep one"
    if (m.fp8_layers or m.half_model) and m.precision not in (_FP16, _BF16):
        what = "FP8 layers run beside 16-bit math" if m.fp8_layers else "a 16-bit model runs 16-bit math"
        return f"{what}: give the row's precision as AMP-FP16 or AMP-BF16, not {row.precision}"
    return m


def _gpus_per_node(notes: str) -> int | None:
    """The GPUs per node a row's notes give (``NODE_SHAPE_NOTE``: "N nodes x M ..." or "M GPUs per node")."""
    shape = NODE_SHAPE_NOTE.search(notes)
    return int(shape.group(1) or shape.group(2)) if shape else None


def _map_row(row: PublishedRow) -> MappedRow | str:
    if (model := canonical_model(row.model)) != row.model:
        row = replace(row, model=model)
    if row.batch_per_gpu is None:
        return "the source gives no batch size"
    precision = precision_of(row.precision)
    if precision is None:
        return f"precision {row.precision} is not one gpuwise models"
    seq_len: int | None
    if row.model == _MLPERF_BERT:
        if why := _unit_problem(row, "bert-large"):
            return why
        return MappedRow(row, "bert-large", precision, "adamw", row.batch_per_gpu, _MLPERF_BERT_SEQ_LEN,
                         counts_tokens=row.unit.strip() == "tokens/s")
    size = _BERT_SIZES.get(row.model.strip().lower())
    if size and ("squad" in row.task.lower() or row.model.strip() in _NVIDIA_BERT):
        match = re.search(r"seq len (\d+)", row.notes)
        if "squad" in row.task.lower():
            # run_squad.py's max_seq_length, 384 in every published recipe unless the notes say otherwise.
            workload, seq_len = f"bert-{size}-squad", int(match.group(1)) if match else _SQUAD_SEQ_LEN
        elif match:
            workload, seq_len = f"bert-{size}", int(match.group(1))
        else:
            return "sequence length not stated (pre-training: put 'seq len N' in the notes)"
        if why := _unit_problem(row, workload):
            return why
        # NVIDIA's BERT recipe, as its scripts run it (DeepLearningExamples PyTorch/LanguageModeling/BERT):
        # attention written out (modeling.py). Pre-training (run_pretraining.py) scripts the model with
        # torch.jit.script and nvFuser on (its elementwise chains fused) and, under --fp16, makes it .half()
        # (run_pretraining.sh's default --allreduce_post_accumulation_fp16); SQuAD (run_squad.py) under --fp16
        # casts it to 16 bits with apex amp's O2 (keep_batchnorm_fp32=False) and fuses nothing.
        amp = precision in (_FP16, _BF16)
        return MappedRow(row, workload, precision, "adamw", row.batch_per_gpu, seq_len,
                         counts_tokens=row.unit.strip() == "tokens/s",
                         fused_optimizer=_steps_fused(row, workload, precision), attention_written_out=True,
                         fused_elementwise=not workload.endswith("-squad"), half_model=amp)
    if row.model not in _MODELS:
        return _zoo_row(row, precision)
    workload, optimizer = _MODELS[row.model]
    if why := _unit_problem(row, workload):
        return why
    seq_len = 50 if workload == "gnmt" else None  # NVIDIA's --train-max-length
    return MappedRow(
        row, workload, precision, optimizer, row.batch_per_gpu, seq_len, counts_tokens=row.unit.strip() == "tokens/s",
        fused_optimizer=_steps_fused(row, workload, precision),
    )


def _recipe_steps_eagerly(workload: str, precision: Precision) -> bool:
    """Whether NVIDIA's recipe for ``workload`` steps its optimizer one kernel per elementwise op: GNMT's
    (seq2seq/train/trainer.py builds ``torch.optim.__dict__[opt_name]``, plain torch.optim.Adam), and SQuAD
    fine-tuning without --fp16 (run_squad.py builds apex's FusedAdam under --fp16 only, else the repository's
    BertAdam, optimization.py: a Python loop of elementwise ops per parameter)."""
    return workload in _EAGER_OPTIMIZER or (workload.endswith("-squad") and precision not in (_FP16, _BF16))


def _steps_fused(row: PublishedRow, workload: str, precision: Precision, named: bool = False) -> bool:
    """Whether ``row``'s optimizer stepped as one fused kernel, however the row names its model: not where
    its notes say ``eager optimizer``; else an optimizer its notes name (``named``) is fused, and the
    recipe's own steps as ``_recipe_steps_eagerly`` says."""
    if EAGER_OPTIMIZER_NOTE.search(row.notes):
        return False
    return named or not _recipe_steps_eagerly(workload, precision)


# A published FP32 row on a GPU with TF32 tensor cores ran TF32: cuDNN's convolutions and RNNs take TF32 by
# PyTorch's default (``torch.backends.cudnn.allow_tf32`` is True: PyTorch docs, CUDA semantics, "TensorFloat-32
# (TF32) on Ampere (and later) devices"), and NVIDIA's NGC containers, in which published tables are run, turn
# it on for matrix products too (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1, the variable pytorch/pytorch#77114 added
# for such environments; an NGC build reports ``torch.backends.cuda.matmul.allow_tf32`` True by default,
# pytorch/pytorch#100145); TensorFlow has run FP32 as TF32 by default since 2.4. "TF32 off" in a row's notes
# keeps it FP32 (a run that disabled it, or gpuwise's own fp32, which does).
TF32_OFF = "tf32 off"


def as_run(m: MappedRow, has_tf32: bool) -> MappedRow:
    """``m`` at the precision its run used on a GPU that has (``has_tf32``) TF32 tensor cores or not: an FP32
    row as TF32 (labelled so) where the framework's defaults ran it so."""
    if m.precision is not Precision.FP32 or not has_tf32 or TF32_OFF in m.row.notes.lower():
        return m
    return replace(m, precision=Precision.TF32, row=replace(m.row, precision=f"{m.row.precision} (ran as TF32)"))


def _unit_problem(row: PublishedRow, workload: str) -> str | None:
    """Why the row's throughput unit is not one gpuwise predicts for ``workload``, or None: a mistyped unit
    would otherwise be read as samples/s and its error reported as the model's."""
    from gpuwise.workloads import get_workload

    units = (f"{get_workload(workload).sample_unit}s/s", "samples/s", "tokens/s")
    if row.unit.strip() in units:
        return None
    return f"unit {row.unit} is not {', '.join(units[:-1])} or {units[-1]}"


def _zoo_row(row: PublishedRow, precision: Precision) -> MappedRow | str:
    """A row that names a zoo workload itself (``gpuwise workloads``), a timm model (``timm:NAME``, or a bare name
    that timm's registry has and the zoo does not: timm's benchmark.py tables name them so) or a Hugging Face
    config (``hf:PATH``), for measurements of your own: ``seq len N``, ``image size N`` and ``optimizer NAME``
    in its notes set those (default: the workload's shape, and the
    optimizer of NVIDIA's recipe for the model where the shipped file has one, as the rows that name the
    recipe are predicted (GNMT's unfused Adam, SGD with momentum for the convnets, SQuAD fine-tuning's adamw
    stepped eagerly in FP32/TF32 as run_squad.py's BertAdam is), else adamw). A named
    optimizer steps as one fused kernel unless the notes say ``eager optimizer`` (torch.optim's per-op
    update, as a plain training script runs it). The zoo's own attention is a fused kernel unless the notes say
    ``attention written out``; ``NCHW`` (or ``channels-first``) keeps an AMP convnet's layout channels-first."""
    from gpuwise.workloads import get_workload

    external = row.model.startswith(("timm:", "hf:"))
    if ":" in row.model and not external:  # a user's workload file: a data file must not make gpuwise import code
        return "no zoo workload with this model"
    try:
        w = get_workload(row.model)
    except GpuwiseError as e:
        if external:
            return str(e)
        w_or_none = _timm_model(row.model)
        if w_or_none is None:
            return "no zoo workload with this model"
        w = w_or_none
    strategy = _strategy(_note(row.notes, "strategy") or "")
    checkpointing = _checkpointing(_note(row.notes, "activation checkpointing") or "none")
    if strategy not in ("", "ddp") or checkpointing != "none":  # the LLM path reads it, or says why not
        return FSDP_OR_CHECKPOINTING
    seq_len = _seq_len(row.notes) or w.default_shape.seq_len
    size = IMAGE_SIZE_NOTE.search(row.notes)
    named = re.search(r"optimizer ([a-z-]+)", row.notes)
    recipe = next((opt for workload, opt in _MODELS.values() if workload == w.name), None)
    optimizer = named.group(1) if named else recipe or "adamw"
    if optimizer not in {"sgd", "sgd-momentum", "adam", "adamw"}:
        return f"optimizer {optimizer} is not one gpuwise models"
    if why := _unit_problem(row, w.name):
        return why
    return MappedRow(row, w.name, precision, optimizer, row.batch_per_gpu or 0, seq_len,
                     counts_tokens=row.unit.strip() == "tokens/s",
                     fused_optimizer=_steps_fused(row, w.name, precision, named=bool(named)),
                     image_size=int(size.group(1)) if size else None)


# Why a held-out row with FSDP or activation checkpointing is not predicted; ``validate --frozen`` reads such a row
# as an LLM run instead (``map_llm_run``: its notes' seq len, strategy, activation checkpointing and compile).
FSDP_OR_CHECKPOINTING = ("a run with FSDP or activation checkpointing: the held-out fit predicts data-parallel "
                         "steps; validate --frozen predicts it as an LLM run (notes: seq len, strategy, activation "
                         "checkpointing, compile)")


def _timm_model(name: str) -> Workload | None:
    """``timm:NAME`` for a bare model name that timm's registry has (timm installed), else None."""
    from gpuwise.workloads import get_workload

    try:
        import timm
    except ImportError:
        return None
    return get_workload(f"timm:{name.strip()}") if timm.is_model(name.strip()) else None


# ------------------------------------------------------------------ published LLM runs


@dataclass(frozen=True)
class LlmRun:
    """A published LLM training run as ``gpuwise predict`` takes it (``published_llm_runs.csv``)."""

    row: PublishedRow
    workload: str
    seq_len: int
    strategy: str  # "fsdp", "ddp"
    activation_checkpointing: str  # "none", "selective", "full"
    compile: bool
    memory_gib: float | None  # peak as published (torchtitan: max_memory_reserved), None if not
    fp8: bool = False  # the blocks' linear layers in FP8 (torchtitan's float8 converter: torchao's tensorwise recipe)

    @property
    def tokens_per_gpu_s(self) -> float:
        return self.row.throughput / self.row.num_gpus


# The notes' keys (``key value``, items apart by ``;``) as other files spell them: "sequence length 2048",
# "seq_len=2048", "sharding_strategy: FULL_SHARD", "activation_checkpointing true".
_NOTE_KEYS = {
    "seq len": ("seq len", "seq_len", "seqlen", "sequence length", "max_seq_len"),
    "strategy": ("strategy", "sharding strategy", "sharding_strategy"),
    "activation checkpointing": ("activation checkpointing", "activation_checkpointing", "gradient checkpointing"),
}


def _note(notes: str, key: str) -> str | None:
    """The value of ``key`` (or a spelling ``_NOTE_KEYS`` gives it) in a row's notes: after a space, ``:`` or ``=``."""
    for name in _NOTE_KEYS.get(key, (key,)):
        match = re.search(rf"(?:^|;)\s*{re.escape(name)}(?:\s*[:=]\s*|\s+)([^;]*)", notes, re.IGNORECASE)
        if match:
            return match.group(1).strip()
    return None


def _seq_len(notes: str) -> int | None:
    """The sequence length a row's notes give (``_note``'s spellings of ``seq len``), None where they give none."""
    words = (_note(notes, "seq len") or "").split()
    return int(words[0]) if words and words[0].isdigit() else None


def _strategy(text: str) -> str:
    """A row's strategy as gpuwise names it (``fsdp``, ``ddp``) where it is one of them, else as written
    (lower case): PyTorch FSDP's FULL_SHARD and HYBRID_SHARD (HSDP: shard in a node, replicate across, priced as
    FSDP over all GPUs) and DeepSpeed's ZeRO-3 shard the parameters; NO_SHARD is DDP."""
    written = text.strip().lower()
    spaced = re.sub(r"[\s_-]+", " ", written)
    if re.search(r"\b(tp|cp|pp)=", written):
        return written
    if spaced.startswith(("fsdp", "hsdp", "full shard", "hybrid shard", "zero3", "zero 3", "zero stage 3")):
        return "fsdp"
    if spaced.startswith(("ddp", "no shard")):
        return "ddp"
    return written


def _checkpointing(text: str) -> str:
    """A row's activation checkpointing as gpuwise names it (``none``, ``full``, ``selective``) where it is one of
    them, else as written (lower case): a bare yes/true is each block recomputed (FSDP's and Hugging Face's
    checkpointing wrap whole blocks), no/false none."""
    written = text.strip().lower()
    word = written.split()[0] if written else ""
    if word in ("none", "no", "false", "off"):
        return "none"
    if word in ("full", "yes", "true", "on"):
        return "full"
    if word == "selective":  # torchtitan's op-level policy, or (not op-level) every n-th block recomputed
        return "selective" if re.search(r"\bop\b|op-level|per-op", written) else _EVERY_NTH_BLOCK
    return written


_EVERY_NTH_BLOCK = "selective, every n-th block"


def _fp8(row: PublishedRow) -> bool:
    """A row whose precision is FP8: an LLM run with FP8 linear layers (torchtitan's float8 converter)."""
    return _precision_key(row.precision) in _FP8_PRECISIONS


def is_llm_run(row: PublishedRow, why: str) -> bool:
    """Whether a row ``map_row`` refused for ``why`` is an LLM run ``map_llm_run`` reads: one with FSDP or
    activation checkpointing, or an FP8 run whose notes give its strategy."""
    return why == FSDP_OR_CHECKPOINTING or (_fp8(row) and _note(row.notes, "strategy") is not None)


def load_llm_runs(path: Path | None = None) -> list[PublishedRow]:
    """The shipped published LLM runs, or a CSV file of the same columns."""
    if path is None:
        text = resources.files("gpuwise.data").joinpath("published_llm_runs.csv").read_text()
        return _parse(text, "shipped LLM runs")
    return load_published(path)


def map_llm_run(row: PublishedRow) -> LlmRun | str:
    """The zoo decoder and settings of a published LLM run, or why gpuwise cannot predict it."""
    from gpuwise.workloads import get_workload

    notes = row.notes
    if row.batch_per_gpu is None:
        return "the source gives no micro batch"
    fp8 = _fp8(row)
    if not fp8 and precision_of(row.precision) is not Precision.AMP_BF16:
        return f"precision {row.precision}: gpuwise models LLM training in bf16, or with FP8 linear layers (FP8)"
    if "lora" in notes.lower():
        return "LoRA fine-tuning: gpuwise models full training"
    try:
        get_workload(row.model)
    except GpuwiseError:
        return f"no zoo decoder named {row.model}"
    seq_len = _seq_len(notes)
    strategy = _strategy(_note(notes, "strategy") or "")
    recompute = _checkpointing(_note(notes, "activation checkpointing") or "")
    compiled = (_note(notes, "compile") or "").lower()
    if seq_len is None:
        return "sequence length not stated"
    if re.search(r"\b(tp|cp|pp)=", strategy):
        return "tensor, context or pipeline parallel: gpuwise models data parallel and FSDP only"
    if strategy not in ("fsdp", "ddp"):
        return f"strategy {strategy or 'not stated'}: not one gpuwise predicts (fsdp, hsdp, full_shard, ddp)"
    mode = strategy
    if recompute == _EVERY_NTH_BLOCK:
        return "selective checkpointing of every n-th block: gpuwise's selective mode is op-level"
    if recompute not in ("none", "full", "selective"):
        return "activation checkpointing not stated"
    memory = _note(notes, "memory")
    return LlmRun(
        row=row, workload=row.model, seq_len=seq_len, strategy=mode, activation_checkpointing=recompute,
        # "unknown": torch.compile was off by default in those trainers
        compile=compiled.split()[0] in ("yes", "true", "on") if compiled else False,
        memory_gib=float(memory.split()[0]) if memory and memory.split()[0].replace(".", "").isdigit() else None,
        fp8=fp8,
    )
