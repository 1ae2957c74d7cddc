"""Models people already use (timm:NAME, hf:PATH) and user factories that take the shape flags.

Counts are checked against the architecture's own arithmetic, not against a table: ViT-B/16's
forward MACs from its layer sizes, a Llama config's parameters and FLOPs from its config.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

import gpuwise
from gpuwise.errors import GpuwiseError
from gpuwise.workloads import get_workload
from tests.helpers import run_cli

timm = pytest.importorskip("timm", reason="timm is an optional extra (pip install 'gpuwise[timm]'); dev installs it")

# A Llama-architecture config as a Hugging Face config.json holds it (2 layers, grouped KV heads, untied head).
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 1000, "hidden_size": 128,
         "intermediate_size": 344, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False}


@pytest.fixture
def llama_dir(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    return tmp_path


def vit_forward_macs(image: int, patch: int = 16, d: int = 768, layers: int = 12, classes: int = 1000) -> int:
    """ViT's forward multiply-adds per image: patch embedding, per layer QKV + projection + MLP (4d) over
    the tokens and the two attention products, the head on the class token."""
    patches = (image // patch) ** 2
    tokens = patches + 1  # the class token
    per_layer = tokens * (4 * d * d + 2 * d * 4 * d) + 2 * tokens * tokens * d
    return patches * d * 3 * patch * patch + layers * per_layer + d * classes


def test_timm_vit_b16_profiles_with_its_own_arithmetic() -> None:
    p = gpuwise.profile("timm:vit_base_patch16_224", batch_size=2)
    assert p.per_sample(p.forward_macs) == vit_forward_macs(224)
    assert p.params_total == 86_567_656  # 85.8M in the layers + 768·197 positions + head, as timm builds it
    assert (p.family, p.sample_unit, p.image_size) == ("image classification", "image", 224)


def test_timm_image_size_resizes_the_position_embeddings() -> None:
    p = gpuwise.profile("timm:vit_base_patch16_224", batch_size=1, image_size=256)
    assert p.forward_macs == vit_forward_macs(256)
    assert p.params_total == 86_567_656 + 768 * ((256 // 16) ** 2 - (224 // 16) ** 2)


def test_timm_convnext_tiny_profiles_despite_its_linspace_schedule() -> None:
    # ConvNeXt computes its stochastic-depth rates with torch.linspace(...).tolist() while it is built,
    # which a fake tensor cannot answer: it is built on the meta device instead.
    p = gpuwise.profile("timm:convnext_tiny", batch_size=2)
    real = timm.create_model("convnext_tiny", pretrained=False)
    assert p.params_total == sum(t.numel() for t in real.parameters())
    # Liu et al. 2022 (arXiv:2201.03545), Table 1: ConvNeXt-T at 224², 4.5 G multiply-adds ("FLOPs")
    assert p.per_sample(p.forward_macs) == pytest.approx(4.5e9, rel=0.02)


def test_hf_llama_config_from_a_local_json(llama_dir: Path) -> None:
    d, f, layers, heads, kv, vocab = 128, 344, 2, 4, 2, 1000
    head = d // heads
    matrices = layers * (d * d + 2 * d * kv * head + d * d + 3 * d * f) + vocab * d  # what multiplies activations
    for spec in (f"hf:{llama_dir}", f"hf:{llama_dir / 'config.json'}"):
        p = gpuwise.profile(spec, batch_size=2)
        assert p.params_total == matrices + vocab * d + layers * 2 * d + d  # + embedding, RMSNorm weights
        seq = p.seq_len
        assert seq == 256 and p.tokens_per_sample == 256 and p.sample_unit == "token"
        # 2 FLOPs per multiply-add over every token, plus causal attention (half of QKᵀ and AV)
        assert p.forward_flops == 2 * 2 * seq * matrices + layers * 2 * (2 * 2 * seq * seq * d) // 2
    assert get_workload(f"hf:{llama_dir}").default_batch_size == 8192 // 256


def test_hf_seq_len_applies(llama_dir: Path) -> None:
    short = gpuwise.profile(f"hf:{llama_dir}", batch_size=1, seq_len=64)
    assert short.seq_len == 64 and short.tokens_per_step == 64


def test_hf_architecture_without_sdpa_profiles_its_attention_written_out(tmp_path: Path) -> None:
    """transformers has no SDPA path for MPT: asking for one failed when the model was built (a traceback);
    its eager attention is what it runs, the scores written out and a softmax, no fused kernel."""
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "mpt", "d_model": 64, "n_heads": 4, "n_layers": 2, "expansion_ratio": 4, "max_seq_len": 128,
        "vocab_size": 100, "no_bias": True, "attn_config": {"alibi": True, "attn_impl": "torch"}}))
    w = get_workload(f"hf:{tmp_path}")
    assert "attention written out" in w.summary
    p = gpuwise.profile(w, batch_size=2, seq_len=32, gpu_kernels=True)
    kinds = {g.kind for g in p.ops}
    assert "softmax" in kinds and "attention" not in kinds


def test_hf_model_transformers_cannot_build_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "gpt2", "n_embd": 130, "n_head": 4, "n_layer": 1, "vocab_size": 100}))
    code, _, err = run_cli("profile", f"hf:{tmp_path}")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "transformers cannot build this gpt2 model" in err


def test_hf_model_whose_forward_fails_on_fake_tensors_is_one_line(tmp_path: Path) -> None:
    """A config transformers builds but whose forward fails (GPT-J with a rotary dim wider than its heads): one
    line naming the model and the error, without torch's logged traceback of the failing op."""
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "gptj", "n_embd": 64, "n_head": 4, "n_layer": 1, "vocab_size": 100, "rotary_dim": 64,
         "n_positions": 128, "bos_token_id": 0, "eos_token_id": 0}))
    code, _, err = run_cli("profile", f"hf:{tmp_path}", "--seq-len", "32")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "the gptj model's forward raised RuntimeError" in err


@pytest.mark.parametrize(
    "spec, message",
    [
        ("timm:vit_base_patch16_22", r"unknown timm model 'vit_base_patch16_22': did you mean timm:vit_base_patch16_2"),
        ("timm:", r"'timm:' names no model: give one, e.g. timm:resnet50"),
        ("hf:{tmp}/nowhere", r"no config.json at '.*nowhere'; give a local config.json or a model folder"),
        ("hf:{tmp}/odd", r"architecture 'not_a_model' is not one transformers .* knows"),
        ("hf:{tmp}/vit", r"vit is not a causal language model"),
        ("hf:{tmp}/broken", r"is not a readable JSON config"),
    ],
)
def test_bad_specs_are_one_line_and_exit_2(spec: str, message: str, tmp_path: Path) -> None:
    for name, text in (("odd", '{"model_type": "not_a_model"}'), ("vit", '{"model_type": "vit"}'),
                       ("broken", "{not json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(text)
    spec = spec.format(tmp=tmp_path)
    with pytest.raises(GpuwiseError, match=message):
        get_workload(spec)
    code, _, err = run_cli("profile", spec)
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err


# ------------------------------------------------------------------ user factories


SHAPED = textwrap.dedent('''
    import torch
    from torch import nn
    import gpuwise

    class Tokens(nn.Module):
        def __init__(self, seq_len):
            super().__init__()
            self.embed = nn.Embedding(100, 32)
            self.mix = nn.Linear(seq_len, seq_len)  # its size follows the sequence
            self.out = nn.Linear(32, 100)

        def forward(self, ids):
            x = self.embed(ids).transpose(1, 2)
            return self.out(self.mix(x).transpose(1, 2))

    def build(seq_len=16):
        return gpuwise.UserWorkload(
            model=Tokens(seq_len), make_batch=lambda n: torch.randint(0, 100, (n, seq_len)),
            loss=lambda m, ids: m(ids).logsumexp(-1).mean(), sample_unit="token", tokens_per_sample=seq_len,
            optimizer="sgd-momentum")

    def no_default(seq_len):
        return build(seq_len)

    class Schedule(nn.Module):
        def __init__(self):
            super().__init__()
            # what timm does: Python numbers computed from a tensor while the model is built
            self.rates = torch.linspace(0, 0.1, 3).tolist()
            self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in self.rates)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    def cloned():
        # nn.TransformerEncoder deep-copies its layer: under fake mode the copy's tensors belong to another
        # fake mode ("Mixing fake modes"); built on the meta device, it profiles
        layer = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, batch_first=True)
        return gpuwise.UserWorkload(model=nn.TransformerEncoder(layer, num_layers=2),
                                    make_batch=lambda n: torch.randn(n, 8, 16), loss=lambda m, x: m(x).sum())

    def scheduled():
        return gpuwise.UserWorkload(model=Schedule(), make_batch=lambda n: torch.randn(n, 8),
                                    loss=lambda m, x: m(x).sum())
''')


@pytest.fixture
def shaped(tmp_path: Path) -> str:
    path = tmp_path / "shaped.py"
    path.write_text(SHAPED)
    return str(path)


def test_a_factory_that_takes_seq_len_gets_the_flag(shaped: str) -> None:
    w = get_workload(f"{shaped}:build")
    assert w.options == ("seq_len",) and w.default_shape.seq_len == 16 and w.optimizer == "sgd-momentum"
    default = gpuwise.profile(f"{shaped}:build", batch_size=2)
    longer = gpuwise.profile(f"{shaped}:build", batch_size=2, seq_len=64)
    assert (default.seq_len, longer.seq_len) == (16, 64)
    assert (default.tokens_per_sample, longer.tokens_per_sample) == (16, 64)
    assert longer.params_total - default.params_total == (64 * 64 + 64) - (16 * 16 + 16)
    assert default.optimizer == "sgd-momentum"  # the workload's own, as nothing else was asked for
    with pytest.raises(GpuwiseError, match=r"--image-size does not apply .* its shape options: --seq-len"):
        gpuwise.profile(f"{shaped}:build", image_size=32)


def test_a_shape_option_without_a_default_names_the_fix(shaped: str) -> None:
    with pytest.raises(GpuwiseError, match=r"give the factory's seq_len a default value"):
        get_workload(f"{shaped}:no_default")


def test_a_factory_that_computes_numbers_while_building_profiles(shaped: str) -> None:
    p = gpuwise.profile(f"{shaped}:scheduled", batch_size=4)
    assert p.params_total == 3 * (8 * 8 + 8)


def test_a_factory_whose_model_clones_its_layers_profiles(shaped: str) -> None:
    p = gpuwise.profile(f"{shaped}:cloned", batch_size=2)
    one_layer = 3 * 16 * 16 + 3 * 16 + 16 * 16 + 16 + 16 * 32 + 32 + 32 * 16 + 16 + 4 * 16  # attention, MLP, 2 norms
    assert p.params_total == 2 * one_layer


def test_the_cli_takes_the_shape_flag_for_a_factory(shaped: str) -> None:
    code, out, err = run_cli("profile", f"{shaped}:build", "--seq-len", "32", "--batch-size", "2", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["seq_len"], data["optimizer"]) == (32, "sgd-momentum")


def test_train_takes_the_workloads_optimizer(shaped: str) -> None:
    code, out, err = run_cli("train", f"{shaped}:build", "--devices", "cpu:2", "--steps", "1", "--dry-run")
    assert code == 0, err
    assert "--optimizer sgd-momentum" in out
    code, out, err = run_cli("train", f"{shaped}:build", "--devices", "cpu:2", "--steps", "1", "--dry-run",
                             "--optimizer", "adam")
    assert code == 0 and "--optimizer adam " in out and "sgd-momentum" not in out, err
