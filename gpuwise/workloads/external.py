"""Models people already use, as workloads: ``timm:NAME`` and ``hf:PATH``.

- ``timm:NAME``: any model in timm's registry (``timm.list_models()``), built without weights
  (``pretrained=False``), trained as ImageNet classification at its own input size and class count
  (timm's pretrained config, read locally), batch 128 unless ``--batch-size`` says otherwise.
- ``hf:PATH``: a causal language model from a local Hugging Face ``config.json`` (or a model folder
  holding one): nothing is downloaded (``HF_HUB_OFFLINE``). It trains on next-token cross entropy
  with SDPA attention (or, where transformers has no SDPA path for the architecture, its eager attention)
  and no KV cache, as the zoo's GPT-2 and Llama do; the sequence is the model's
  positions up to 4,096, the batch holds 8,192 tokens unless the flags say otherwise.

Both are built outside fake mode with their parameters on the meta device and then given fake
tensors (``gpuwise.workloads.meta``): timm computes Python numbers while building (stochastic-depth
rates from ``torch.linspace(...).tolist()``), which fake tensors cannot answer.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gpuwise.errors import GpuwiseError
from gpuwise.workloads.meta import build_for_step
from gpuwise.workloads.registry import Shape, Workload

TIMM_BATCH = 128  # the zoo's ViT-B/16 batch; CNNs in the zoo use 256
HF_MAX_SEQ = 4096  # the zoo's Llama sequence; a config's positions beyond it are a choice, not a default
HF_TOKENS_PER_BATCH = 8192  # GPT-2 at 1024 × 8, Llama at 4096 × 2, as the zoo runs them
ROPE_KEYS = ("rope_theta", "rope_parameters", "rope_scaling")  # rotary positions: no learned table to outgrow


def external_workload(spec: str) -> Workload:
    kind, _, target = spec.partition(":")
    if not target.strip():
        example = "timm:resnet50" if kind == "timm" else "hf:path/to/config.json"
        raise GpuwiseError(f"'{spec}' names no model: give one, e.g. {example}")
    return timm_workload(spec, target.strip()) if kind == "timm" else hf_workload(spec, target.strip())


# ------------------------------------------------------------------ timm


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise GpuwiseError("timm: workloads need timm installed: pip install 'gpuwise[timm]' (or pip install timm)"
                           ) from None
    return timm


def timm_workload(spec: str, name: str) -> Workload:
    timm = _timm()
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join('timm:' + c for c in close)}? " if close else ""
        raise GpuwiseError(f"unknown timm model '{name}': {hint}timm.list_models() lists the names "
                           f"(timm {timm.__version__})")
    cfg = timm.models.get_pretrained_cfg(name)
    channels, height, _ = cfg.input_size if cfg is not None and cfg.input_size else (3, 224, 224)
    num_classes = int(cfg.num_classes) if cfg is not None and cfg.num_classes else 1000

    def build_model(shape: Shape) -> nn.Module:
        return build_for_step(lambda: _create_timm(timm, name, num_classes, shape.image_size, height).train())

    def make_batch(batch_size: int, shape: Shape) -> tuple[torch.Tensor, torch.Tensor]:
        assert shape.image_size is not None
        images = torch.randn(batch_size, channels, shape.image_size, shape.image_size)
        return images, torch.randint(0, num_classes, (batch_size,))

    from gpuwise.workloads.vision import classification_loss

    return Workload(
        name=spec, family="image classification", sample_unit="image", default_batch_size=TIMM_BATCH,
        summary=f"timm {name}, {height}x{height}, {num_classes} classes", build_model=build_model,
        make_batch=make_batch, forward_loss=classification_loss, default_shape=Shape(image_size=height),
        data_layout="images",
        reference=f"timm {timm.__version__} registry ({name}), no weights",
    )


def _create_timm(timm: Any, name: str, num_classes: int, image_size: int | None, default_size: int) -> nn.Module:
    """Models with position embeddings (ViT) are built for the image size; convolutional ones take any
    size and refuse the argument."""
    if image_size is not None and image_size != default_size:
        try:
            model: nn.Module = timm.create_model(name, pretrained=False, num_classes=num_classes, img_size=image_size)
            return model
        except TypeError:
            pass
    model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    return model


# ------------------------------------------------------------------ Hugging Face configs


def _config_file(spec: str, target: str) -> Path:
    path = Path(target).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise GpuwiseError(f"{spec}: no config.json at '{target}'; give a local config.json or a model folder "
                           "holding one (nothing is downloaded)")
    return path


def _read_config(spec: str, path: Path) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GpuwiseError(f"{spec}: {path} is not a readable JSON config ({e})") from None
    if not isinstance(values, dict):
        raise GpuwiseError(f"{spec}: {path} holds no JSON object")
    return values


def hf_workload(spec: str, target: str) -> Workload:
    import transformers

    path = _config_file(spec, target)
    values = _read_config(spec, path)
    model_type = values.get("model_type")
    if not isinstance(model_type, str) or model_type not in transformers.CONFIG_MAPPING:
        what = f"architecture '{model_type}'" if model_type else "no model_type"
        raise GpuwiseError(f"{spec}: {what} is not one transformers {transformers.__version__} knows; "
                           "give the config.json of a model it can build, or write a factory (path/to/file.py:factory)")
    config_class = transformers.CONFIG_MAPPING[model_type]
    fields = {k: v for k, v in values.items() if k not in ("model_type", "transformers_version", "architectures")}
    # SDPA (a fused kernel on the GPU) where transformers has that path for the architecture, else its eager
    # attention, written out (MPT's, in transformers 5): asking for SDPA there fails when the model is built.
    model_class = transformers.MODEL_FOR_CAUSAL_LM_MAPPING.get(config_class, None)
    attention = "sdpa" if getattr(model_class, "_supports_sdpa", False) else "eager"

    def make_config() -> Any:
        # A copy: a config keeps nested dicts (rope_parameters) by reference. use_cache=False: a training
        # step keeps no KV cache.
        options: dict[str, Any] = dict(copy.deepcopy(fields), attn_implementation=attention, use_cache=False)
        return config_class(**options)

    try:
        config = make_config()
    except Exception as e:
        raise GpuwiseError(f"{spec}: transformers cannot read this {model_type} config: {type(e).__name__}: {e}"
                           ) from None
    if type(config) not in transformers.MODEL_FOR_CAUSAL_LM_MAPPING:
        raise GpuwiseError(f"{spec}: {model_type} is not a causal language model; hf: takes causal LMs "
                           "(Llama, GPT-2, Mistral, Qwen, ...): write a factory for others (path/to/file.py:factory)")
    vocab = int(config.vocab_size)
    max_positions = getattr(config, "max_position_embeddings", None)
    learned = not any(key in values for key in ROPE_KEYS)  # a learned position table stops at its length
    seq_len = min(int(max_positions or HF_MAX_SEQ), HF_MAX_SEQ)

    def build_model(shape: Shape) -> nn.Module:
        check_seq(shape)

        def build() -> nn.Module:
            try:
                model: Any = transformers.AutoModelForCausalLM.from_config(make_config())
            except Exception as e:  # transformers' own check of the config, at build time
                raise GpuwiseError(f"{spec}: transformers cannot build this {model_type} model: "
                                   f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
            model.loss_type = "ForCausalLM"  # GPT-2's class matches no loss name; this is the loss it falls back to
            return model.train()

        return build_for_step(build)

    def check_seq(shape: Shape) -> int:
        assert shape.seq_len is not None
        if learned and max_positions and shape.seq_len > max_positions:
            raise GpuwiseError(f"--seq-len {shape.seq_len} is too long for {spec}: its learned position embeddings "
                               f"stop at {max_positions}; use --seq-len {max_positions} or less")
        return shape.seq_len

    def make_batch(batch_size: int, shape: Shape) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.randint(0, vocab, (batch_size, check_seq(shape)))}

    def tokens(shape: Shape) -> int:
        assert shape.seq_len is not None
        return shape.seq_len

    from gpuwise.workloads.language import FAMILY, causal_lm_loss
    from gpuwise.workloads.user import user_code

    def forward_loss(model: nn.Module, batch: Any) -> torch.Tensor:
        # transformers' code for an architecture can fail where the config is odd (a rotary dim wider than a head)
        # or on a kernel the profile's fake tensors refuse (MoE experts' grouped products on float32): one line
        with user_code(spec, f"the {model_type} model's forward"):
            return causal_lm_loss(model, batch)

    return Workload(
        name=spec, family=FAMILY, sample_unit="token", default_batch_size=max(1, HF_TOKENS_PER_BATCH // seq_len),
        summary=f"{model_type} causal LM from {path}"
                + ("" if attention == "sdpa" else " (attention written out: transformers has no SDPA path for it)"),
        build_model=build_model, make_batch=make_batch,
        forward_loss=forward_loss, default_shape=Shape(seq_len=seq_len), tokens_per_sample=tokens,
        data_layout="tokens",
        reference=f"{path} (transformers {transformers.__version__}, no weights)",
    )
