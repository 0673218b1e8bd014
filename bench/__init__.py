"""Benchmarks run by `make bench` (python -m bench). Each bench_*.py module has run() -> dict."""
