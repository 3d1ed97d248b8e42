"""bulktag: add tags to LeadLex CRM contacts in bulk, from files, within the API's limits."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
