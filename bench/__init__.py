"""bulktag's benchmarks: ``python -m bench [--quick] [--only NAME ...]`` (``make bench``)."""
