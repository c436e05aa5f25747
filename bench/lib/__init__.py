"""Shared pieces of the benchmarks: statistics, the machine, the service, the clients."""
