"""The load benchmark (benchmarks/load.py): harness parts."""
