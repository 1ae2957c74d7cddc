"""The performance model: per-op roofline, data-parallel communication, fitted efficiencies."""
