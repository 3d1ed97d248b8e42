"""bulktag: add tags to LeadLex CRM contacts in bulk, from files, within the API's limits."""

from __future__ import annotations

import os

__version__ = "0.1.0"

__all__ = ["__version__"]

# A Parquet file with an INTERVAL column (DuckDB writes them) makes polars 2.1 panic on its
# schema, even when only other columns are read. Read before polars is imported, this
# makes such a column a struct, which bulktag never reads. (tests/read/test_columns.py)
os.environ.setdefault("POLARS_IMPORT_INTERVAL_AS_STRUCT", "1")
