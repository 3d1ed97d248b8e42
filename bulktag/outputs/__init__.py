"""What a run leaves: results files, summary.json, metrics, the console summary, report pages."""
