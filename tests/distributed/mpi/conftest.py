"""Tests that run in every process of an MPI job: `mpiexec -n 2 python -m pytest
tests/distributed/mpi` (and `-n 3`). A plain `pytest` run collects nothing here;
`tests/distributed/test_mpi_launch.py` starts the MPI job when mpi4py is installed."""

import os

_launched = any(os.environ.get(v) for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"))

if not _launched:
    collect_ignore_glob = ["test_*.py"]
else:
    import nanofn.distributed

    if not nanofn.distributed.is_initialized():
        nanofn.distributed.initialize()
