"""Benchmarks: ack latency under a slow Graph, the poller at a thousand runs (see bench/README.md)."""
