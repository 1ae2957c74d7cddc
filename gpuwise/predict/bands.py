"""The uncertainty band of each kind of prediction: what ``plan``, ``predict`` and the report quote."""

from __future__ import annotations

from collections.abc import Mapping

# Relative error of each kind of prediction, applied as total × (1 ± error): the error is
# defined on throughput, (predicted − measured) / measured, as `gpuwise validate` reports it.
# These come from `gpuwise validate` (benchmarks/RESULTS.md): "measured" from the spread of
# repeated benches, "extrapolated" from its cross-GPU pairs, "analytical" from its held-out
# published rows, "analytical-cpu" from the held-out CPU benches (benchmarks/cpu_prediction.py).
# Update them when the validation numbers change. As of 2026-12-07 02:15 UTC (RESULTS.md, what NVIDIA's BERT
# and the L40S's MLPerf runs ran: attention written out, 16-bit and fused pre-training, the masked-LM head on
# the predicted positions; a fused attention kernel fitted on the LLM runs, pooled and per generation):
# held-out GPU p90 21.8%, cross-GPU p90 11.8%, held-out CPU p90 27%; "measured" is the spread of repeated
# CPU benches on a quiet machine (6.6% in bench_stability); each rounded up to a multiple of 5%.
#
# An analytical GPU prediction takes the band of its GPU's generation (``analytical:Generation``): the p90 of
# that generation in `gpuwise validate`'s first table (every generation held out, over every shipped file;
# RESULTS.md, 2026-12-07 evening) or of the LLM runs held out by generation (`benchmarks/llm_runs.py`), whichever
# is wider, rounded up to 5%: Volta 21.2% (39 rows), Ampere 21.7% (66 rows; LLM runs 19%), Ada 20.8% (18 rows),
# Hopper 20.1% (29 MLPerf rows; LLM runs 21%). Wider where the data is thin: Turing's 12.9% comes from eight FP32
# PyTorch ResNet rows on two cards of one chip, its AMP (GeForce tensor cores at half rate, the T4) unchecked;
# Blackwell's 17.6% from MLPerf's BERT-large alone (12 rows on B200 and GB200): each kept at 35%, the widest any
# generation had before this table. A generation no published training run checks (AMD's) gets twice that.
BAND = {"analytical": 0.35, "analytical-cpu": 0.30, "extrapolated": 0.15, "measured": 0.10,
        "analytical:Volta": 0.25, "analytical:Turing": 0.35, "analytical:Ampere": 0.25,
        "analytical:Hopper": 0.25, "analytical:Ada": 0.25, "analytical:Blackwell": 0.35, "analytical:unchecked": 0.70}


def bands_text(bands: Mapping[str, float] = BAND) -> str:
    """The bands as a person reads them: 'analytical on GPUs ±30% Volta, ±45% Ampere, ... ±50% others;
    analytical on your CPU ±30%, ...'."""
    by_generation = [(k.split(":", 1)[1], e) for k, e in bands.items() if k.startswith("analytical:")]
    parts = []
    if by_generation:
        parts.append("analytical on GPUs " + ", ".join(
            f"±{e:.0%} {'other generations' if g == 'unchecked' else g}" for g, e in by_generation))
    parts += [f"{kind.replace('-cpu', ' on your CPU')} ±{error:.0%}" for kind, error in bands.items()
              if ":" not in kind and not (by_generation and kind == "analytical")]
    return ", ".join(parts)
