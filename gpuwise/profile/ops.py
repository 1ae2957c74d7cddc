"""What each aten op costs: its kind, its FLOPs and the bytes it moves.

FLOPs are those of matrix products (matmul, convolution, attention, RNN gates),
the convention of every published reference (ResNet-50's 4.1 GMACs, the 6·N·T
of language models): a multiply-add is 2 FLOPs. Other ops (elementwise,
normalisation, softmax, reductions) are bound by memory traffic; for them we
give an approximate "vector FLOPs" figure so nothing is silently zero, and the
bytes they move. An op that is in no table is reported in the audit.

We keep our own formulas rather than ``torch.utils.flop_counter``'s: in torch
2.14 it overcounts the backward of grouped convolutions by about the group
count, counts CPU attention as 0, and knows no CPU RNN kernel. The tests check
these formulas against the references and against FlopCounterMode where it is
right.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from gpuwise.profile.result import Recurrence

# Op kinds. "tensor" kinds run on matrix units (tensor cores); the rest are memory bound.
MATMUL, CONV, GROUPED_CONV, ATTENTION, RNN = "matmul", "conv", "grouped conv", "attention", "rnn"
NORM, SOFTMAX, ELEMENTWISE, REDUCTION = "normalization", "softmax", "elementwise", "reduction"
POOL, EMBEDDING, COPY, LOSS, FACTORY, VIEW = "pooling", "embedding/index", "copy", "loss", "factory", "view"
UNKNOWN = "unknown"
TENSOR_KINDS = frozenset({MATMUL, CONV, GROUPED_CONV, ATTENTION, RNN})


def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(s) for s in shape)


def _mm(args: Sequence[Any], out: Any) -> int:
    a, b = args[-2], args[-1]  # addmm(bias, a, b) and mm(a, b)
    m, k = a.shape
    return 2 * int(m) * int(k) * int(b.shape[1])


def _bmm(args: Sequence[Any], out: Any) -> int:
    a, b = args[-2], args[-1]  # baddbmm(c, a, b) and bmm(a, b)
    n, m, k = a.shape
    return 2 * int(n) * int(m) * int(k) * int(b.shape[-1])


def _mv(args: Sequence[Any], out: Any) -> int:
    a = args[-2]
    return 2 * _numel(a.shape)


def _dot(args: Sequence[Any], out: Any) -> int:
    return 2 * _numel(args[0].shape)


def conv_flops(out_shape: Sequence[int], in_shape: Sequence[int], weight_shape: Sequence[int], transposed: bool) -> int:
    """2 × (output elements) × (input channels per group × kernel elements).

    The weight is (C_out, C_in/groups, *k); for a transposed convolution it is
    (C_in, C_out/groups, *k) and every input element meets C_out/groups × k weights.
    """
    per_element = _numel(weight_shape[1:])
    return 2 * (_numel(in_shape) if transposed else _numel(out_shape)) * per_element


def _conv(args: Sequence[Any], out: Any) -> int:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    return conv_flops(out.shape, x.shape, w.shape, transposed)


def _conv_backward(args: Sequence[Any], out: Any) -> int:
    grad_out, x, w = args[0], args[1], args[2]
    transposed, mask = bool(args[7]), args[10]
    forward = conv_flops(grad_out.shape, x.shape, w.shape, transposed)
    return forward * (int(bool(mask[0])) + int(bool(mask[1])))  # grad input, grad weight


def attention_flops(q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int], *,
                    causal: bool = False) -> int:
    """Q·Kᵀ and P·V. Causal attention counts half: the flash and memory-efficient kernels skip the
    blocks above the diagonal (FlashAttention-2, Dao 2023, §3.1.1), about half of the (seq × seq) products."""
    rows = _numel(q_shape[:-1])  # batch × heads × query positions
    keys, head_dim, value_dim = int(k_shape[-2]), int(q_shape[-1]), int(v_shape[-1])
    full = 2 * rows * keys * head_dim + 2 * rows * keys * value_dim
    return full // 2 if causal else full


def _attention_formula(name: str, *, backward: bool) -> FlopFormula:
    """FLOPs of an attention op (backward: twice the forward, dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K,
    dK = dSᵀ·Q, its recomputation of P not counted), causal where the op's own flag says so."""
    arguments = getattr(torch.ops.aten, name).default._schema.arguments
    flag = next(((i, a.default_value) for i, a in enumerate(arguments) if a.name in ("is_causal", "custom_mask_type")),
                None)  # custom_mask_type: xformers' kernel, != 0 is causal
    first = 1 if backward else 0  # a backward's first argument is the output's gradient

    def formula(args: Sequence[Any], out: Any) -> int:
        causal = flag is not None and bool(args[flag[0]] if flag[0] < len(args) else flag[1])
        q, k, v = args[first], args[first + 1], args[first + 2]
        return (2 if backward else 1) * attention_flops(q.shape, k.shape, v.shape, causal=causal)

    return formula


_RNN_GATES = {1: 1, 0: 1, 2: 4, 3: 3}  # cuDNN/oneDNN modes: RNN_RELU, RNN_TANH, LSTM, GRU


def rnn_layer_flops(steps_times_batch: int, input_size: int, hidden_size: int, gates: int) -> int:
    """One direction of one layer: the gate pre-activations W_ih·x + W_hh·h for every step."""
    return 2 * steps_times_batch * gates * hidden_size * (input_size + hidden_size)


def _mkldnn_recurrence(args: Sequence[Any], mode: int, hidden: int, bidirectional: int) -> Recurrence:
    steps, batch = int(args[0].shape[0]), int(args[0].shape[1])  # input is (steps, batch, features) here
    return Recurrence(
        steps=steps, batch=batch, hidden=int(args[hidden]), gates=_RNN_GATES[int(args[mode])],
        directions=2 if args[bidirectional] else 1,
    )


def _fused_recurrence(args: Sequence[Any], first: int) -> Recurrence:
    x, w_hh = args[first], args[first + 2]
    gates, directions = int(args[first + 6]), int(args[first + 7])
    return Recurrence(
        steps=int(x.shape[0]), batch=int(x.shape[1]), hidden=int(w_hh.shape[1]), gates=gates, directions=directions
    )


# Each recurrent-layer op: its loop, where its W_ih is, and its passes over the layer's products
# (backward: the gradients of the inputs/hidden state and of the weights, twice the forward).
# Argument positions are those of each op's schema (torch.ops.aten.mkldnn_rnn_layer.default._schema,
# and gpuwise::fused_rnn_layer's in gpuwise.profile.rnn).
_RNN_OPS: dict[str, tuple[Callable[[Sequence[Any]], Recurrence], int, int]] = {
    "mkldnn_rnn_layer": (lambda a: _mkldnn_recurrence(a, mode=9, hidden=10, bidirectional=13), 1, 1),
    "mkldnn_rnn_layer_backward": (lambda a: _mkldnn_recurrence(a, mode=14, hidden=15, bidirectional=19), 1, 2),
    "fused_rnn_layer": (lambda a: _fused_recurrence(a, 0), 1, 1),
    "fused_rnn_layer_backward": (lambda a: _fused_recurrence(a, 1), 2, 2),
}


def recurrence(func: Any, args: Sequence[Any]) -> Recurrence | None:
    """The time-step loop of a recurrent-layer op (its steps and step shape), None for other ops."""
    entry = _RNN_OPS.get(_packet_name(func))
    return entry[0](args) if entry else None


def _rnn_formula(name: str) -> Callable[[Sequence[Any], Any], int]:
    loop, w_ih, passes = _RNN_OPS[name]

    def flops(args: Sequence[Any], out: Any) -> int:
        r = loop(args)
        return passes * rnn_layer_flops(r.steps * r.batch, int(args[w_ih].shape[1]), r.hidden, r.gates)

    return flops


FlopFormula = Callable[[Sequence[Any], Any], int]

TENSOR_FORMULAS: dict[str, tuple[str, FlopFormula]] = {
    "mm": (MATMUL, _mm),
    "_scaled_mm": (MATMUL, lambda args, out: _mm(args[:2], out)),
    "addmm": (MATMUL, _mm),
    "_addmm_activation": (MATMUL, _mm),
    "bmm": (MATMUL, _bmm),
    "baddbmm": (MATMUL, _bmm),
    "mv": (MATMUL, _mv),
    "addmv": (MATMUL, _mv),
    "dot": (MATMUL, _dot),
    "vdot": (MATMUL, _dot),
    "convolution": (CONV, _conv),
    "_convolution": (CONV, _conv),
    "convolution_backward": (CONV, _conv_backward),
    **{
        name: (ATTENTION, _attention_formula(name, backward=name.endswith("_backward")))
        for name in (
            "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
            "_flash_attention_forward", "_efficient_attention_forward",
            "_scaled_dot_product_flash_attention_for_cpu_backward", "_scaled_dot_product_flash_attention_backward",
            "_scaled_dot_product_efficient_attention_backward", "_scaled_dot_product_cudnn_attention_backward",
        )
    },
    "mkldnn_rnn_layer": (RNN, _rnn_formula("mkldnn_rnn_layer")),
    "fused_rnn_layer": (RNN, _rnn_formula("fused_rnn_layer")),
    "fused_rnn_layer_backward": (RNN, _rnn_formula("fused_rnn_layer_backward")),
    "mkldnn_rnn_layer_backward": (RNN, _rnn_formula("mkldnn_rnn_layer_backward")),
}

# Ops that only reinterpret metadata: no bytes, no FLOPs.
VIEW_OPS = frozenset(
    """view _unsafe_view _reshape_alias reshape t transpose permute expand expand_as slice select unsqueeze
    squeeze as_strided detach alias lift_fresh split split_with_sizes unbind chunk narrow unfold diagonal
    view_as_real view_as_complex device sym_size sym_stride sym_numel sym_storage_offset is_same_size
    _local_scalar_dense is_nonzero set_ unsafe_split unsafe_split_with_sizes movedim numpy_T
    _has_compatible_shallow_copy_type _to_dense resize_ resolve_conj resolve_neg conj _neg_view _conj
    _nested_tensor_from_mask_left_aligned""".split()
)

# Memory-bound ops by kind, with approximate vector FLOPs per output element.
_KIND_TABLE: dict[str, tuple[str, float]] = {}


def _kinds(kind: str, per_element: float, names: str) -> None:
    for name in names.split():
        _KIND_TABLE[name] = (kind, per_element)


_kinds(
    ELEMENTWISE,
    1,
    """add sub mul div neg abs relu relu_ threshold threshold_backward gelu gelu_backward silu silu_backward sigmoid
    sigmoid_backward tanh tanh_backward hardtanh hardtanh_backward hardswish hardswish_backward hardsigmoid
    hardsigmoid_backward leaky_relu leaky_relu_backward elu elu_backward exp log sqrt rsqrt pow reciprocal
    log2 log10 clamp clamp_min clamp_max clip where masked_fill lerp addcmul addcdiv mish mish_backward rsub sign
    eq ne lt le gt ge logical_not logical_and logical_or bitwise_and bitwise_or bitwise_not minimum maximum floor ceil
    round trunc fill fill_ zero_ erf erfc sin cos log1p expm1 log_sigmoid_forward log_sigmoid_backward
    softplus softplus_backward _foreach_add _foreach_mul _foreach_div _foreach_sqrt _foreach_addcmul
    _foreach_addcdiv _foreach_lerp _foreach_add_ _foreach_mul_ _foreach_div_ _foreach_sqrt_ _foreach_addcmul_
    _foreach_addcdiv_ _foreach_lerp_ _foreach_sub _foreach_sub_ _foreach_neg _foreach_maximum_
    _amp_foreach_non_finite_check_and_unscale_ _amp_update_scale_ isinf isnan isfinite bitwise_xor remainder
    fmod atan2 square xlogy special_xlog1py prelu _prelu_kernel _prelu_kernel_backward glu glu_backward
    native_dropout_backward dropout_backward logit logit_backward""",
)
_kinds(
    NORM,
    5,
    """native_batch_norm native_batch_norm_backward _native_batch_norm_legit _native_batch_norm_legit_functional
    _native_batch_norm_legit_no_training batch_norm_backward native_layer_norm native_layer_norm_backward
    native_group_norm native_group_norm_backward _fused_rms_norm _fused_rms_norm_backward rms_norm
    fused_rms_norm fused_rms_norm_backward
    _batch_norm_with_update _batch_norm_with_update_functional _batch_norm_no_update norm linalg_vector_norm
    _weight_norm_interface _weight_norm_interface_backward renorm""",
)
_kinds(SOFTMAX, 5, "_softmax _safe_softmax _log_softmax _softmax_backward_data _log_softmax_backward_data")
_kinds(
    REDUCTION,
    1,
    """sum mean amax amin max min argmax argmin prod var std var_mean std_mean cumsum cumprod logsumexp all any
    topk sort _foreach_norm sum_to_size count_nonzero nms fp8_scale""",
)
_kinds(
    POOL,
    1,
    """max_pool2d_with_indices max_pool2d_with_indices_backward avg_pool2d avg_pool2d_backward
    _adaptive_avg_pool2d _adaptive_avg_pool2d_backward adaptive_max_pool2d adaptive_max_pool2d_backward
    max_pool3d_with_indices max_pool3d_with_indices_backward avg_pool3d avg_pool3d_backward
    _adaptive_avg_pool3d _adaptive_avg_pool3d_backward upsample_nearest2d upsample_nearest2d_backward
    upsample_bilinear2d upsample_bilinear2d_backward _upsample_bilinear2d_aa _upsample_nearest_exact2d
    _upsample_nearest_exact2d_backward max_pool1d avg_pool1d roi_align _roi_align_backward grid_sampler_2d
    grid_sampler_2d_backward im2col col2im""",
)
_kinds(
    EMBEDDING,
    0,
    """embedding embedding_dense_backward index_select index index_put index_put_ _index_put_impl_ gather scatter
    scatter_add scatter_add_ scatter_reduce index_add index_add_ index_copy masked_scatter take
    _embedding_bag _embedding_bag_backward nonzero masked_select unique _unique2 searchsorted bucketize
    slice_backward select_backward index_select_backward embedding_backward repeat_interleave
    select_scatter slice_scatter diagonal_scatter as_strided_scatter""",
)
_kinds(
    COPY,
    0,
    """copy_ _to_copy fp8_cast clone contiguous cat stack repeat constant_pad_nd _pad_enum roll flip pad tril triu
    _copy_from _copy_from_and_resize new_empty_strided empty_like zeros_like ones_like full_like rand_like
    randn_like tile expand_copy permute_copy transpose_copy view_copy _unsafe_view_copy split_copy
    reflection_pad2d reflection_pad2d_backward replication_pad2d t_copy lift""",
)
_kinds(
    LOSS,
    2,
    """nll_loss_forward nll_loss_backward nll_loss2d_forward nll_loss2d_backward _ctc_loss _ctc_loss_backward
    ctc_loss ctc_loss_backward binary_cross_entropy binary_cross_entropy_backward binary_cross_entropy_with_logits
    mse_loss mse_loss_backward smooth_l1_loss smooth_l1_loss_backward huber_loss huber_loss_backward l1_loss
    cross_entropy_loss""",
)
_kinds(
    FACTORY,
    0,
    """empty empty_strided zeros ones full arange randn rand randint randperm normal normal_ uniform_ bernoulli_
    bernoulli native_dropout linspace scalar_tensor eye new_zeros new_ones new_full new_empty random_ exponential_
    _fused_dropout""",
)


def _packet_name(func: Any) -> str:
    return str(func._overloadpacket.__name__)


def classify(func: Any) -> str:
    """The kind of an aten op (``VIEW`` for metadata-only ops, ``UNKNOWN`` when in no table)."""
    name = _packet_name(func)
    if name in TENSOR_FORMULAS:
        return TENSOR_FORMULAS[name][0]
    if name in VIEW_OPS or func.namespace in ("profiler", "prim"):
        return VIEW
    entry = _KIND_TABLE.get(name) or _KIND_TABLE.get(name.rstrip("_"))
    return entry[0] if entry else UNKNOWN


def refine_kind(func: Any, kind: str, args: Sequence[Any]) -> str:
    """Grouped and depthwise convolutions are their own kind: little math per byte, poorly served by GEMM units."""
    if kind == CONV:
        groups_at = 9 if _packet_name(func) == "convolution_backward" else 8
        if len(args) > groups_at and int(args[groups_at]) > 1:
            return GROUPED_CONV
    return kind


def tensor_flops(func: Any, args: Sequence[Any], out: Any) -> int:
    """FLOPs of a matrix-product op, or 0 for every other op."""
    entry = TENSOR_FORMULAS.get(_packet_name(func))
    return entry[1](args, out) if entry else 0


def vector_flops(func: Any, out_numel: int) -> int:
    """Approximate FLOPs of a memory-bound op: a per-element factor × output elements."""
    name = _packet_name(func)
    entry = _KIND_TABLE.get(name) or _KIND_TABLE.get(name.rstrip("_"))
    return int(entry[1] * out_numel) if entry else 0


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
