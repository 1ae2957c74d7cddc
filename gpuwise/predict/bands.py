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
# An analytical GPU prediction takes the band of its GPU's generation (``analytical:Generation``), as
# far as that generation was checked (RESULTS.md): Volta and Ampere from validate's held-out p90 (21.2%,
# 31.6%); Hopper from MLPerf's ResNet-50 and BERT-large on H100/H200 (absolute p90 20.9%, frozen, each
# run priced for the pipeline its configs state) and the LLM runs held out by generation (worst 29%); Ada
# from MLPerf on L40S (p90 25.0%, frozen, since its PCIe ring is priced at the share published PCIe rings
# reach; 50.4% before, its two BERT rows predicted 50% fast) and the RTX 4090's TensorFlow rows (11.1%, with
# their measured matmul rates); Blackwell from MLPerf's BERT-large on B200 and
# GB200 (absolute p90 17.6%, frozen), one workload, so kept as wide as the widest fitted generation
# (Ampere's); Turing from eight FP32 PyTorch ResNet rows on
# the RTX 2080 Ti and Titan RTX (absolute p90 12.9%, frozen), kept as wide as Ampere's because its AMP
# (GeForce tensor cores at half rate, the T4) is unchecked; a generation no published training run checks
# (AMD's) gets more than the worst checked one.
BAND = {"analytical": 0.35, "analytical-cpu": 0.30, "extrapolated": 0.15, "measured": 0.10,
        "analytical:Volta": 0.25, "analytical:Turing": 0.35, "analytical:Ampere": 0.35,
        "analytical:Hopper": 0.30, "analytical:Ada": 0.25, "analytical:Blackwell": 0.35, "analytical:unchecked": 0.70}


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
