"""Communication of data-parallel training: DDP's gradient all-reduce and FSDP's extra traffic.

Ring all-reduce moves 2(n−1)/n × the gradient bytes through each GPU's slowest link;
DDP overlaps it with backward in buckets, so only what backward cannot hide (at
least the last bucket) adds to the step. FSDP all-gathers the parameters in forward
and again in backward, and reduce-scatters the gradients: (n−1)/n × the parameters ×
(2 × bytes per parameter as gathered + bytes per gradient as reduced). FSDP2 with
``MixedPrecisionPolicy(param_dtype=bfloat16, reduce_dtype=float32)`` gathers 2 bytes and
reduces 4: 8 bytes per parameter, where fp32 FSDP moves 12. Activation checkpointing adds
no gather: FSDP2 gathers a block for its backward before the block's forward is rerun.

Synchronous data parallelism also waits, every optimizer step, for the slowest of its GPUs
(``sync_wait_s``): the published multi-GPU runs scale 73-100% where the collectives alone
predict 99.6-100% (``benchmarks/step_spread_law.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from gpuwise.errors import GpuwiseError

GPUS_PER_NODE = 8  # GPUs in one node (HGX/DGX boards); more GPUs are nodes of 8 (``--gpus-per-node`` says another)


def check_gpus_per_node(value: int | None) -> None:
    """``--gpus-per-node``: a host of 1 to 8 GPUs (what a catalog node holds), else one line naming the flag."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= GPUS_PER_NODE):
        raise GpuwiseError(f"--gpus-per-node must be a whole number from 1 to {GPUS_PER_NODE} (the GPUs in one host), "
                           f"got {value!r}")


def node_shape(num_gpus: int, gpus_per_node: int | None) -> tuple[int, int]:
    """(nodes, GPUs in a full node) of ``num_gpus`` GPUs in hosts of ``gpus_per_node`` (None: ``GPUS_PER_NODE``):
    12 GPUs in hosts of 8 are two nodes, the ring priced over nodes of 8."""
    size = gpus_per_node or GPUS_PER_NODE
    return math.ceil(num_gpus / size), min(num_gpus, size)


# Achievable fraction of a link's per-direction bandwidth for NCCL rings (an assumption,
# stated: NCCL's bus bandwidth on NVLink/InfiniBand typically reaches 75-85%).
LINK_EFFICIENCY = 0.8
# A ring over PCIe reaches far less of its x16 link: the host bounds it ("On PCI systems, the performance you
# get is usually determined by the bandwidth your CPU and memory can deliver", NCCL's maintainer in
# NVIDIA/nccl#1639), and a ring of 8 crosses the link between two sockets. Published all_reduce_perf bus
# bandwidths at large sizes, as shares of the link: 8x RTX 5090 (Gen5, no P2P) on two Xeon 8480+ 28 of 64 GB/s,
# 4 of them 35 (NVIDIA/nccl#1639); 4x RTX 5090 (Gen5, no P2P) 27.3 at 128 MB (NVIDIA/nccl-tests#287); 8x RTX 5090
# with P2P (a patched driver) on two EPYC 9575F 43.9 at 128 MB (aikitoria/open-gpu-kernel-modules@08dc3455,
# README); 4x RTX 4090 with P2P (patched) 25.9 of 32 at 1 GB (tinygrad/open-gpu-kernel-modules#36); 8x RTX PRO
# 6000 on two EPYC 9575F at most 23.9 of 64 (NVIDIA/nccl#2036). Their median share (0.37-0.81), read 2026-12-07;
# no data-center PCIe card (L40S, H100 PCIe) has a published 4-8 GPU figure found.
PCIE_RING_EFFICIENCY = 0.49
PCIE_GBPS_PER_DIRECTION = {3: 16.0, 4: 32.0, 5: 64.0, 6: 128.0}  # x16, GB/s
DDP_BUCKET_BYTES = 25 * 2**20  # torch DistributedDataParallel's default bucket_cap_mb
# The network between nodes, per GPU, by the class of GPU (overridden by --network-gbits):
# - Hopper and Blackwell boards: one 400 Gb/s NDR InfiniBand / RoCE NIC per GPU (NVIDIA DGX H100/H200
#   and DGX B200 user guides: eight single-port ConnectX-7 400 Gb/s for the compute fabric; AWS p5,
#   3,200 Gb/s EFA for 8 H100s; torchtitan's H100 benchmarks: 400 Gb/s per GPU).
# - Ampere and Volta boards with NVLink: one 200 Gb/s HDR NIC per GPU (NVIDIA DGX A100 user guide:
#   eight single-port ConnectX-6 200 Gb/s; AWS p4d, 400 Gb/s for 8 A100s, is less).
# - PCIe data-center cards (L40S, L4, A10, T4): clouds give their 8-GPU instances 100-400 Gb/s in all
#   (AWS g6e.48xlarge, 8 L40S, 400 Gb/s EFA; g5.48xlarge, 8 A10G, 100 Gb/s): 50 Gb/s per GPU.
# - GeForce and workstation cards (RTX-*, Quadro-*): no InfiniBand; the nodes they sit in have Ethernet,
#   25-100 Gb/s per node. An assumption, stated in the output: one 100 Gb/s Ethernet port per node of 8,
#   12.5 Gb/s per GPU (no cloud rents them as multi-node clusters, so there is no instance to quote).
# Per GPU, but GeForce/workstation nodes': one 100 Gb/s NIC per node, shared by its GPUs.
NETWORK_GBITS_BY_CLASS = {"hopper+": 400.0, "nvlink": 200.0, "pcie": 50.0, "workstation": 100.0}
WORKSTATION_PREFIXES = ("RTX-", "Quadro-")  # catalog names of GeForce and workstation cards


def default_network_gbits(architecture: str, nvlink_gbps: float | None, name: str = "",
                          gpus_per_node: int = GPUS_PER_NODE) -> tuple[float, str]:
    """The stated default network per GPU for a catalog GPU in nodes of ``gpus_per_node``, and the class it was
    chosen by (with its source)."""
    family = architecture.split()[0].lower() if architecture else ""
    if name.startswith(WORKSTATION_PREFIXES):
        return NETWORK_GBITS_BY_CLASS["workstation"] / gpus_per_node, (
            f"GeForce/workstation cards: Ethernet, 100 Gb/s per node of {gpus_per_node} (an assumption; such nodes "
            "have 25-100 GbE, no InfiniBand)")
    if nvlink_gbps and family in ("hopper", "blackwell"):
        return NETWORK_GBITS_BY_CLASS["hopper+"], ("Hopper/Blackwell boards: a 400 Gb/s InfiniBand NIC per GPU "
                                                    "(NVIDIA DGX H100/B200 user guides, AWS p5)")
    if nvlink_gbps:
        return NETWORK_GBITS_BY_CLASS["nvlink"], ("NVLink boards before Hopper: a 200 Gb/s InfiniBand NIC per GPU "
                                                   "(NVIDIA DGX A100 user guide)")
    return NETWORK_GBITS_BY_CLASS["pcie"], ("PCIe data-center cards: about 50 Gb/s per GPU, as clouds give 8-GPU "
                                             "instances 400 Gb/s (AWS g6e.48xlarge)")


@dataclass(frozen=True)
class Links:
    """Per-direction bandwidths a GPU's traffic can use, GB/s."""

    intra_node_gbps: float  # NVLink, else PCIe
    inter_node_gbps: float  # the network, per GPU
    via: str  # "NVLink", "PCIe 4.0", ...
    ring_efficiency: float = LINK_EFFICIENCY  # of intra_node_gbps a ring reaches (PCIe: PCIE_RING_EFFICIENCY)
    ring_source: str = "NCCL's usual share of NVLink"  # where ring_efficiency comes from
    measured: bool = False  # intra_node_gbps is a bus bandwidth the user measured (``busbw_gbs``)


def links(nvlink_gbps: float | None, pcie_gen: int | None, network_gbits: float,
          busbw_gbs: float | None = None) -> Links:
    """From catalog figures: NVLink is quoted as total bidirectional GB/s per GPU. ``busbw_gbs``: the bus
    bandwidth a user measured for an all-reduce within one of their nodes (nccl-tests' ``all_reduce_perf``,
    ``busbw`` at large sizes): the ring within a node runs at it, in place of the link times its share."""
    if nvlink_gbps:
        link = Links(intra_node_gbps=nvlink_gbps / 2, inter_node_gbps=network_gbits / 8, via="NVLink")
    else:
        gen = pcie_gen or 4
        link = Links(intra_node_gbps=PCIE_GBPS_PER_DIRECTION.get(gen, 32.0), inter_node_gbps=network_gbits / 8,
                     via=f"PCIe {gen}.0", ring_efficiency=PCIE_RING_EFFICIENCY,
                     ring_source="the median share published PCIe all-reduce runs reach")
    if busbw_gbs:
        return Links(intra_node_gbps=busbw_gbs, inter_node_gbps=link.inter_node_gbps,
                     via=f"{link.via} at {busbw_gbs:g} GB/s measured", ring_efficiency=1.0,
                     ring_source="measured (--busbw)", measured=True)
    return link


def ring_text(link: Links) -> str:
    """The bus bandwidth a ring within one node is priced at, and where it comes from."""
    rate = link.intra_node_gbps * link.ring_efficiency
    if link.measured:
        return f"{rate:g} GB/s bus bandwidth, {link.ring_source}"
    return (f"{rate:.3g} GB/s bus bandwidth: {link.via}'s {link.intra_node_gbps:g} GB/s a direction × "
            f"{link.ring_efficiency:g}, {link.ring_source}; --busbw sets yours (nccl-tests' all_reduce_perf)")


def ring_bandwidth_gbps(links: Links, num_gpus: int, gpus_per_node: int) -> float:
    """The bus bandwidth of a ring collective: per GPU, (n−1)/n × the bytes over this rate.

    In one node the ring runs at its NVLink (or PCIe) rate. Across nodes NCCL runs one ring per
    channel, each crossing from node to node through its own NIC; every ring carries its share of
    the data over each hop, so a node's inter-node traffic is spread over all its NICs, and the
    ring's rate is the node's total network bandwidth (per-GPU rate × GPUs per node), capped by
    the intra-node link. NCCL's own ``busbw`` is this quantity (nccl-tests doc/PERFORMANCE.md), and
    across nodes its expected value is the node's total NIC bandwidth: NVIDIA/nccl-tests issue #119
    (3 nodes of 8 A100 with 4 HDR NICs each: 100 GB/s expected, 85-96 measured) and #152 (the same
    arithmetic for 4 HDR NICs per A100 node); one NIC per GPU, as in a DGX, gives 8 × the NIC."""
    within = links.intra_node_gbps * links.ring_efficiency
    if num_gpus <= gpus_per_node:
        return within
    return min(within, links.inter_node_gbps * gpus_per_node * LINK_EFFICIENCY)


def allreduce_s(num_bytes: int, num_gpus: int, bandwidth_gbps: float) -> float:
    if num_gpus <= 1:
        return 0.0
    return 2 * (num_gpus - 1) / num_gpus * num_bytes / (bandwidth_gbps * 1e9)


def ddp_exposed_s(gradient_bytes: int, num_gpus: int, bandwidth_gbps: float, backward_s: float) -> float:
    """What the gradient all-reduce adds to a step after overlapping with backward."""
    total = allreduce_s(gradient_bytes, num_gpus, bandwidth_gbps)
    last_bucket = total * min(1.0, DDP_BUCKET_BYTES / max(gradient_bytes, 1))
    return max(total - backward_s, last_bucket)


def fsdp_traffic_bytes(num_params: int, num_gpus: int, *, param_bytes: int, reduce_bytes: int) -> float:
    """Bytes each rank sends (and receives) per step: all-gather in forward and in backward, reduce-scatter."""
    if num_gpus <= 1:
        return 0.0
    return (num_gpus - 1) / num_gpus * num_params * (2 * param_bytes + reduce_bytes)


def fsdp_exposed_s(traffic_bytes: float, first_gather_bytes: float, bandwidth_gbps: float, compute_s: float) -> float:
    """FSDP's collectives, prefetched behind compute (FSDP2 gathers the next block while one runs): what
    compute cannot hide, and the first block's gather, which nothing runs before."""
    if traffic_bytes <= 0:
        return 0.0
    bandwidth = bandwidth_gbps * 1e9
    return max(traffic_bytes / bandwidth - compute_s, 0.0) + first_gather_bytes / bandwidth


def slowest_of(num_gpus: int) -> float:
    """The expected maximum of ``num_gpus`` independent standard normal draws: how many standard
    deviations the slowest rank's step lies above the mean step; 0 for one GPU. Blom's approximation
    Φ⁻¹((n − 0.375) / (n + 0.25)): 4% above the exact order statistic at n = 2, within 1% from 4 up."""
    if num_gpus <= 1:
        return 0.0
    return NormalDist().inv_cdf((num_gpus - 0.375) / (num_gpus + 0.25))


# The step length at which ``Efficiency.step_spread`` is stated: the relative spread of a 100 ms step.
SPREAD_REFERENCE_S = 0.1


def sync_wait_s(step_s: float, spread: float, num_gpus: int) -> float:
    """What a step of synchronous data parallelism waits for its slowest GPU, beyond the mean step.

    Each GPU's step varies from step to step (its batch's shapes, the input pipeline's hiccups, host
    jitter); the gradient sync makes every GPU wait for the slowest, ``slowest_of(n)`` standard
    deviations above the mean. A step is many short pieces that vary independently (kernels, batches
    of the loader, micro batches), so its variance grows with its length: its standard deviation is
    ``spread`` × √(``SPREAD_REFERENCE_S`` × step), ``spread`` being the relative spread of a 100 ms step.
    The published multi-GPU rows agree: fitted with the deviation ∝ step^(1 − α), α = 0.5 leaves a third
    less squared error than α = 0 (a spread proportional to the step), about as little as α = 0.75 or 1
    (``benchmarks/step_spread_law.py``).
    ``spread`` is fitted per workload family (``gpuwise.predict.fit.fit_step_spread``)."""
    if num_gpus <= 1 or spread <= 0 or step_s <= 0:
        return 0.0
    return spread * slowest_of(num_gpus) * math.sqrt(SPREAD_REFERENCE_S * step_s)
