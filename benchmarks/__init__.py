"""nanofn's benchmarks: `python -m benchmarks` (see run.py and BENCHMARKS.md)."""
