"""Fleet: node sets, the gate that merges node reports, and fan-out on Dask (optional extra)."""
