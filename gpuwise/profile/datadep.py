"""Stated sizes for data-dependent ops, so detection training can run on fake tensors.

Under ``FakeTensorMode`` a tensor has a shape but no values, so an op whose
output *size* depends on values (``nonzero`` and ``torch.where(mask)``,
boolean-mask indexing, ``torchvision::nms``, ``unique``) or that returns a
value (``.item()``, ``bool(tensor)``) cannot run: fake tensors raise
``DynamicOutputShapeException`` / ``DataDependentOutputException``. Detection
training is full of them: anchor matching, proposal filtering, NMS, box
sampling and per-level ROI pooling.

``DataDependentShapes`` is a dispatch mode entered *inside* the fake mode::

    with FakeTensorMode(), DataDependentShapes() as datadep:
        loss = workload.forward_loss(model, batch)
        loss.backward()
    datadep.substitutions  # Counter: "op in function -> size" -> calls
    datadep.summary()      # one line per (op, site): sizes, calls and the rule's reason

Every op runs unchanged. Only when the fake-tensor machinery raises one of the
two exceptions does the mode supply an output itself: a fake tensor of a
*stated* size, or a stated Python value for ``.item()``. The size comes from a
``Rule`` for the call site (the Python function and source line in the model
code that issued the op). Rules read the sizes from the module's own
configuration where one bounds them (the box sampler's ``batch_size_per_image``
and ``positive_fraction``) and say why each size is representative; the
sampled sizes that set the big compute (512 ROIs per image for Faster R-CNN's
box head, every anchor for RetinaNet's focal loss) come out exactly as in real
training. Sites without a rule get the upper bound (every mask element
true, no box suppressed, all values distinct); an ``.item()`` without a rule is
an error, because no value is safe to assume for control flow. Every
substitution is recorded (op, site, rule, call count, sizes or values) for the
profiler's audit.

The mode changes nothing for real tensors (they never raise), and the workloads
never need it outside fake mode.
"""

from __future__ import annotations

import linecache
import math
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException
from torch.utils._python_dispatch import TorchDispatchMode

from gpuwise.errors import GpuwiseError

_DATA_DEPENDENT = (DynamicOutputShapeException, DataDependentOutputException)

# RetinaNet: foreground anchors (IoU >= 0.5, plus each box's best anchor) per
# ground-truth box. Measured with torchvision's Matcher on the 120,087 anchors of
# an 800x800 image for the detection workloads' synthetic boxes (sides 10-40% of
# the image): mean 29 per box (89-154 for 4 boxes over 50 draws); rounded up.
RETINANET_FOREGROUND_ANCHORS_PER_BOX = 32


class DataDependentError(GpuwiseError):
    """A data-dependent op that the mode cannot size (no rule, no safe default)."""


@dataclass(frozen=True)
class Site:
    """Where in the model's Python code a data-dependent op was issued."""

    function: str  # "module:qualname" of the calling function
    lineno: int
    line: str  # the source line, stripped ("" when the source is not available)
    frame: FrameType

    def __str__(self) -> str:
        return f"{self.function}:{self.lineno}"

    def local(self, name: str) -> Any:
        """A local variable of the calling function."""
        return self.frame.f_locals[name]

    def outer_local(self, function: str, name: str, depth: int = 16) -> Any:
        """A local variable of the nearest enclosing call of ``function`` (a qualname, e.g. "RoIHeads.forward")."""
        frame: FrameType | None = self.frame
        for _ in range(depth):
            if frame is None:
                break
            if frame.f_code.co_qualname == function:
                return frame.f_locals[name]
            frame = frame.f_back
        raise LookupError(f"{self} is not called from {function}")


Size = int | float | bool  # rows of a nonzero/nms/unique output, or the value of an .item()


@dataclass(frozen=True)
class Rule:
    """The size (or ``.item()`` value) to use for one data-dependent call site.

    ``kind`` is one of ``"nonzero"`` (also boolean-mask indexing and
    ``masked_select``: the number of true elements), ``"nms"`` (boxes kept),
    ``"unique"`` (distinct values) or ``"item"`` (the Python value).
    ``function`` is ``"module:qualname"`` of the calling function and ``line`` a
    fragment of its source line ("" matches any line). ``size(tensor, site)``
    gets the op's data input (the mask, the boxes, the tensor) and returns the
    size or value; ``reason`` says why it is representative.
    """

    kind: str
    function: str
    line: str
    size: Callable[[torch.Tensor, Site], Size]
    reason: str

    def matches(self, kind: str, site: Site) -> bool:
        return kind == self.kind and site.function == self.function and self.line in site.line


@dataclass
class Substitution:
    """Every time one op at one site was given a stated output."""

    op: str  # e.g. "aten.nonzero", "torchvision.nms", ".item()"
    kind: str
    site: str  # "module:qualname:line"
    reason: str  # the rule's reason, or the default's
    by_rule: bool
    calls: int = 0
    results: list[Size] = field(default_factory=list)  # distinct sizes/values, in first-use order

    def describe(self) -> str:
        shown = ", ".join(str(r) for r in self.results[:6]) + (", ..." if len(self.results) > 6 else "")
        unit = {"item": "value", "nms": "boxes kept", "unique": "distinct values"}.get(self.kind, "true elements")
        return f"{self.op} at {self.site} x{self.calls}: {unit} {shown} ({self.reason})"


_OP_LABELS = {"aten._local_scalar_dense": ".item()", "aten.index": "aten.index (boolean mask)"}

_DEFAULT_REASON = {
    "nonzero": "no rule for this site: upper bound, every element true",
    "nms": "no rule for this site: upper bound, no box suppressed",
    "unique": "no rule for this site: upper bound, every value distinct",
}


class DataDependentShapes(TorchDispatchMode):
    """Give data-dependent ops under ``FakeTensorMode`` stated sizes, and record each one.

    Enter it inside the fake mode (``with FakeTensorMode(), DataDependentShapes():``)
    so that it sees each op before the fake mode does. ``rules`` defaults to
    ``RULES`` (torchvision detection training) plus anything added with
    ``register_rule``.
    """

    def __init__(self, rules: Sequence[Rule] | None = None) -> None:
        super().__init__()
        self.rules: tuple[Rule, ...] = tuple(RULES if rules is None else rules)
        # Calls per "op at function -> size", live while the mode runs: the profiler's audit.
        self.substitutions: Counter[str] = Counter()
        self._records: dict[tuple[str, str], Substitution] = {}

    @property
    def records(self) -> list[Substitution]:
        """The substitutions in detail (site with line, rule, sizes), one per (op, site), in first-use order."""
        return list(self._records.values())

    def summary(self) -> list[str]:
        """One line per (op, site): what was substituted, how often, and why."""
        return [s.describe() for s in self._records.values()]

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        try:
            if func.namespace == "aten":
                return func(*args, **kwargs)
            with warnings.catch_warnings():
                # torchvision's fake kernels warn that create_unbacked_symint is deprecated before they raise
                warnings.filterwarnings("ignore", message=".*create_unbacked_symint.*", category=FutureWarning)
                return func(*args, **kwargs)
        except _DATA_DEPENDENT as exc:
            return self._substitute(func, args, kwargs, exc)

    # -- substitutes -------------------------------------------------------

    def _substitute(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], exc: Exception) -> Any:
        packet = func.overloadpacket
        aten = torch.ops.aten
        if packet is aten.nonzero:
            return self._nonzero(func, args[0])
        if packet is aten.index and func is aten.index.Tensor:
            indices = [self._long_indices(func, i) for i in args[1]]
            return func(args[0], [j for group in indices for j in group])
        if packet is aten.masked_select:
            x, mask = torch.broadcast_tensors(args[0], args[1])
            rows = self._count("nonzero", func, mask, mask.numel())
            return x.new_empty((rows,))
        if str(packet) == "torchvision.nms":
            boxes = args[0]
            return torch.zeros(self._count("nms", func, boxes, boxes.shape[0]), dtype=torch.long, device=boxes.device)
        if packet in (aten._unique2, aten._unique):
            return self._unique(func, args, kwargs)
        if packet is aten._local_scalar_dense:
            return self._count("item", func, args[0], None)
        site = _call_site()
        raise DataDependentError(
            f"{func} at {site} has a data-dependent output that gpuwise cannot size under fake tensors "
            f"({type(exc).__name__}); avoid the op in the training step or add a rule with "
            "gpuwise.profile.datadep.register_rule"
        ) from exc

    def _nonzero(self, func: Any, mask: torch.Tensor) -> torch.Tensor:
        rows = self._count("nonzero", func, mask, mask.numel())
        return torch.zeros((rows, mask.dim()), dtype=torch.long, device=mask.device)

    def _long_indices(self, func: Any, index: torch.Tensor | None) -> list[torch.Tensor | None]:
        """A boolean mask index as the integer indices ATen turns it into (one per mask dimension)."""
        if index is None or index.dtype not in (torch.bool, torch.uint8):
            return [index]
        return list(self._nonzero(func, index).unbind(1))

    def _unique(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        x = args[0]
        schema_args = [a.name for a in func._schema.arguments]
        given = dict(zip(schema_args, args, strict=False)) | kwargs
        distinct = self._count("unique", func, x, x.numel())
        values = x.new_zeros((distinct,))
        inverse = torch.zeros(x.shape if given.get("return_inverse") else (0,), dtype=torch.long, device=x.device)
        if func.overloadpacket is torch.ops.aten._unique:
            return values, inverse
        counts = torch.zeros((distinct if given.get("return_counts") else 0,), dtype=torch.long, device=x.device)
        return values, inverse, counts

    def _count(self, kind: str, func: Any, tensor: torch.Tensor, upper: int | None) -> Any:
        site = _call_site()
        rule = next((r for r in self.rules if r.matches(kind, site)), None)
        if rule is not None:
            result = rule.size(tensor, site)
            reason = rule.reason
        elif kind == "item":
            raise DataDependentError(
                f"{func} (.item() or bool() of a tensor) at {site} needs a value that fake tensors do not have; "
                "avoid it in the training step or add a rule with gpuwise.profile.datadep.register_rule"
            )
        else:
            assert upper is not None
            result, reason = upper, _DEFAULT_REASON[kind]
        if kind != "item":
            if not isinstance(result, int) or isinstance(result, bool) or result < 0:
                raise AssertionError(f"rule for {kind} at {site} gave {result!r}, not a count")
            if upper is not None:
                result = min(result, upper)
        op = _OP_LABELS.get(str(func.overloadpacket), str(func.overloadpacket))
        key = (op, str(site))
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = Substitution(
                op=op, kind=kind, site=key[1], reason=reason, by_rule=rule is not None
            )
        record.calls += 1
        if not any(r == result and type(r) is type(result) for r in record.results):
            record.results.append(result)
        self.substitutions[f"{op} in {site.function.partition(':')[2]} -> {result}"] += 1
        return result


def _call_site() -> Site:
    """The model code that issued the op: the innermost frame outside torch that calls into the dispatch modes.

    Other dispatch modes (a profiler's tracer) may sit between this one and the
    model, so the search starts past the outermost ``__torch_dispatch__`` frame.
    """
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    from gpuwise.workloads.user import USER_MODULE_PREFIX

    start = max((i for i, f in enumerate(frames) if f.f_code.co_name == "__torch_dispatch__"), default=-1) + 1
    for frame in frames[start:]:
        module = frame.f_globals.get("__name__", "")
        # gpuwise's own tracing modes (fused attention's __torch_function__) sit between the model and torch
        if module != "torch" and not module.startswith(("torch.", "gpuwise.profile.")):
            code = frame.f_code
            line = linecache.getline(code.co_filename, frame.f_lineno).strip()
            where = code.co_filename if module.startswith(USER_MODULE_PREFIX) else module  # the user's own file
            return Site(f"{where}:{code.co_qualname}", frame.f_lineno, line, frame)
    raise AssertionError("data-dependent op issued from no Python frame outside torch")


def register_rule(rule: Rule) -> None:
    """Add a rule that every later ``DataDependentShapes()`` uses."""
    RULES.append(rule)


# -- rules for torchvision detection training ----------------------------------
#
# Sizes for one image with n candidates. torchvision's BalancedPositiveNegativeSampler
# draws min(#positives, quota) positives, quota = batch_size_per_image * positive_fraction,
# and fills the rest of batch_size_per_image with negatives. We state that the
# positives fill their quota (the most the sampler allows); the total drawn,
# batch_size_per_image (256 anchors per image in the RPN, 512 proposals in the ROI
# heads), is then exactly torchvision's and does not depend on that statement: fewer
# positives only shift samples to negatives. It moves only the small box-regression
# losses (RPN: ~4 anchors per box reach IoU 0.7, so 16 positives rather than 128).


def _sampler_quota(sampler: Any) -> int:
    return int(sampler.batch_size_per_image * sampler.positive_fraction)


def _drawn(n: int, sampler: Any) -> tuple[int, int]:
    """(positives, negatives) the sampler draws from n candidates when the positives fill their quota."""
    positives = min(n, _sampler_quota(sampler))
    return positives, min(n - positives, sampler.batch_size_per_image - positives)


def _every(tensor: torch.Tensor, site: Site) -> int:
    return tensor.numel()


def _rows(tensor: torch.Tensor, site: Site) -> int:
    return tensor.shape[0]


def _candidate_positives(mask: torch.Tensor, site: Site) -> int:
    return min(mask.numel(), _sampler_quota(site.local("self")))


def _candidate_negatives(mask: torch.Tensor, site: Site) -> int:
    return mask.numel() - _candidate_positives(mask, site)


def _rpn_drawn(which: int, masks_name: str) -> Callable[[torch.Tensor, Site], int]:
    def size(mask: torch.Tensor, site: Site) -> int:
        sampler = site.local("self").fg_bg_sampler
        return sum(_drawn(m.numel(), sampler)[which] for m in site.local(masks_name))

    return size


def _roi_drawn(mask: torch.Tensor, site: Site) -> int:
    return sum(_drawn(mask.numel(), site.local("self").fg_bg_sampler))


def _roi_positives(labels: torch.Tensor, site: Site) -> int:
    # In RoIHeads.forward, ``labels`` is the per-image list of the drawn proposals' labels;
    # an image that drew m proposals drew min(m, quota) positives.
    quota = _sampler_quota(site.outer_local("RoIHeads.forward", "self").fg_bg_sampler)
    return sum(min(per_image.numel(), quota) for per_image in site.outer_local("RoIHeads.forward", "labels"))


def _nms_levels(site: Site) -> int:
    try:
        return len(site.outer_local("RegionProposalNetwork.filter_proposals", "num_anchors_per_level"))
    except LookupError:
        return 1


def _levels(idxs: torch.Tensor, site: Site) -> int:
    return min(idxs.numel(), _nms_levels(site))


def _per_level(mask: torch.Tensor, site: Site) -> int:
    return math.ceil(mask.numel() / _nms_levels(site))


def _per_pooler_level(mask: torch.Tensor, site: Site) -> int:
    return math.ceil(mask.numel() / len(site.local("x_filtered")))


def _retinanet_foreground(mask: torch.Tensor, site: Site) -> int:
    boxes = int(site.local("targets_per_image")["boxes"].shape[0])
    return min(mask.numel(), RETINANET_FOREGROUND_ANCHORS_PER_BOX * boxes)


def _constant(value: Size) -> Callable[[torch.Tensor, Site], Size]:
    def size(tensor: torch.Tensor, site: Site) -> Size:
        return value

    return size


_TV = "torchvision.models.detection"
_BOXES = "torchvision.ops.boxes"

RULES: list[Rule] = [
    # GeneralizedRCNNTransform / RetinaNet input checks
    Rule("item", f"{_TV}.transform:GeneralizedRCNNTransform.torch_choice", "uniform_", _constant(0.0),
         "random pick among the training min_size choices: the first (the workloads give one)"),
    Rule("item", f"{_TV}.generalized_rcnn:GeneralizedRCNN.forward", "degenerate_boxes.any()", _constant(False),
         "no degenerate target box (the synthetic boxes are valid by construction)"),
    Rule("item", f"{_TV}.retinanet:RetinaNet.forward", "degenerate_boxes.any()", _constant(False),
         "no degenerate target box (the synthetic boxes are valid by construction)"),
    # RPN proposal filtering
    Rule("nonzero", f"{_BOXES}:remove_small_boxes", "", _every,
         "every clipped proposal is wider than min_size (1e-3 px)"),
    Rule("nonzero", f"{_TV}.rpn:RegionProposalNetwork.filter_proposals", "score_thresh", _every,
         "every proposal passes score_thresh (0.0 by default; scores are sigmoid probabilities)"),
    Rule("nms", f"{_BOXES}:nms", "", _rows,
         "no box suppressed (the upper bound); the RPN then keeps post_nms_top_n, 2000 per image in training"),
    Rule("unique", f"{_BOXES}:_batched_nms_vanilla", "unique", _levels,
         "batched NMS over RPN proposals: one class per feature level, all present"),
    Rule("nonzero", f"{_BOXES}:_batched_nms_vanilla", "idxs == class_id", _per_level,
         "proposals split evenly over the feature levels"),
    Rule("nonzero", f"{_BOXES}:_batched_nms_vanilla", "keep_mask", _every,
         "no proposal suppressed (as for nms)"),
    # Matching and sampling (RPN anchors, ROI proposals)
    Rule("nonzero", f"{_TV}._utils:Matcher.set_low_quality_matches_", "highest_quality_foreach_gt", _rows,
         "one best-matching prediction per ground-truth box (ties on the regular anchor grid add a few)"),
    Rule("nonzero", f"{_TV}._utils:BalancedPositiveNegativeSampler.__call__", ">= 1", _candidate_positives,
         "positives fill the sampler's quota (batch_size_per_image x positive_fraction)"),
    Rule("nonzero", f"{_TV}._utils:BalancedPositiveNegativeSampler.__call__", "== 0", _candidate_negatives,
         "every other candidate is a negative"),
    Rule("nonzero", f"{_TV}.rpn:RegionProposalNetwork.compute_loss", "sampled_pos_inds",
         _rpn_drawn(0, "sampled_pos_inds"), "positive anchors the sampler drew: its quota (128 of 256 per image)"),
    Rule("nonzero", f"{_TV}.rpn:RegionProposalNetwork.compute_loss", "sampled_neg_inds",
         _rpn_drawn(1, "sampled_neg_inds"),
         "negative anchors the sampler drew: the rest of batch_size_per_image (256 per image)"),
    Rule("nonzero", f"{_TV}.roi_heads:RoIHeads.subsample", "", _roi_drawn,
         "proposals the sampler drew: batch_size_per_image (512 per image)"),
    Rule("nonzero", f"{_TV}.roi_heads:fastrcnn_loss", "labels > 0", _roi_positives,
         "positive proposals among those drawn: the sampler's quota (128 of 512 per image)"),
    # Multi-scale ROI pooling
    Rule("nonzero", "torchvision.ops.poolers:_multiscale_roi_align", "levels == level", _per_pooler_level,
         "sampled proposals split evenly over the pooled feature levels"),
    # RetinaNet losses
    Rule("nonzero", f"{_TV}.retinanet:RetinaNetClassificationHead.compute_loss", "foreground_idxs_per_image",
         _retinanet_foreground,
         f"{RETINANET_FOREGROUND_ANCHORS_PER_BOX} foreground anchors per ground-truth box (IoU >= 0.5; measured)"),
    Rule("nonzero", f"{_TV}.retinanet:RetinaNetClassificationHead.compute_loss", "valid_idxs_per_image", _every,
         "no anchor ignored (IoU in [0.4, 0.5) is ~0.2% of anchors): the focal loss covers every anchor"),
    Rule("item", f"{_TV}.retinanet:RetinaNetClassificationHead.compute_loss", "max(1, num_foreground)",
         _constant(True), "max(1, num_foreground) compares num_foreground > 1: true (there are foreground anchors)"),
    Rule("nonzero", f"{_TV}.retinanet:RetinaNetRegressionHead.compute_loss", "foreground_idxs_per_image",
         _retinanet_foreground,
         f"{RETINANET_FOREGROUND_ANCHORS_PER_BOX} foreground anchors per ground-truth box (IoU >= 0.5; measured)"),
]
