"""Scale-out: score, validate and monitor on a Dask cluster with the one-process answers."""
