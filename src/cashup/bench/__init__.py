"""Benchmarks that measure the service beside a baseline on the same machine, in the same run (SPEC §12)."""
