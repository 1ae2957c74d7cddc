"""Communication of data-parallel training: DDP's gradient all-reduce and FSDP's extra traffic.

Ring all-reduce moves 2(n−1)/n × the gradient bytes through each GPU's slowest link;
DDP overlaps it with backward in buckets, so only what backward cannot hide (at
least the last bucket) adds to the step. FSDP all-gathers the parameters in forward
and again in backward, and reduce-scatters the gradients: 3 × (n−1)/n × the
parameter bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

# Achievable fraction of a link's per-direction bandwidth for NCCL rings (an assumption,
# stated: NCCL's bus bandwidth on NVLink/InfiniBand typically reaches 75-85%).
LINK_EFFICIENCY = 0.8
PCIE_GBPS_PER_DIRECTION = {3: 16.0, 4: 32.0, 5: 64.0, 6: 128.0}  # x16, GB/s
DDP_BUCKET_BYTES = 25 * 2**20  # torch DistributedDataParallel's default bucket_cap_mb
DEFAULT_NETWORK_GBITS = 200.0  # per GPU between nodes: one HDR InfiniBand NIC per GPU, as in a DGX A100


@dataclass(frozen=True)
class Links:
    """Per-direction bandwidths a GPU's traffic can use, GB/s."""

    intra_node_gbps: float  # NVLink, else PCIe
    inter_node_gbps: float  # the network, per GPU
    via: str  # "NVLink", "PCIe 4.0", ...


def links(nvlink_gbps: float | None, pcie_gen: int | None, network_gbits: float = DEFAULT_NETWORK_GBITS) -> Links:
    """From catalog figures: NVLink is quoted as total bidirectional GB/s per GPU."""
    if nvlink_gbps:
        intra, via = nvlink_gbps / 2, "NVLink"
    else:
        gen = pcie_gen or 4
        intra, via = PCIE_GBPS_PER_DIRECTION.get(gen, 32.0), f"PCIe {gen}.0"
    return Links(intra_node_gbps=intra, inter_node_gbps=network_gbits / 8, via=via)


def ring_bandwidth_gbps(links: Links, num_gpus: int, gpus_per_node: int) -> float:
    """The ring runs at its slowest link: the network once it spans nodes."""
    slowest = links.intra_node_gbps if num_gpus <= gpus_per_node else min(links.intra_node_gbps, links.inter_node_gbps)
    return slowest * LINK_EFFICIENCY


def allreduce_s(num_bytes: int, num_gpus: int, bandwidth_gbps: float) -> float:
    if num_gpus <= 1:
        return 0.0
    return 2 * (num_gpus - 1) / num_gpus * num_bytes / (bandwidth_gbps * 1e9)


def ddp_exposed_s(gradient_bytes: int, num_gpus: int, bandwidth_gbps: float, backward_s: float) -> float:
    """What the gradient all-reduce adds to a step after overlapping with backward."""
    total = allreduce_s(gradient_bytes, num_gpus, bandwidth_gbps)
    last_bucket = total * min(1.0, DDP_BUCKET_BYTES / max(gradient_bytes, 1))
    return max(total - backward_s, last_bucket)


def fsdp_exposed_s(param_bytes: int, num_gpus: int, bandwidth_gbps: float, compute_s: float) -> float:
    """FSDP's all-gathers (forward, backward) and reduce-scatter, prefetched behind compute."""
    if num_gpus <= 1:
        return 0.0
    total = 3 * (num_gpus - 1) / num_gpus * param_bytes / (bandwidth_gbps * 1e9)
    return max(total - compute_s, 0.0) + total * 0.05  # the first all-gather is never hidden
