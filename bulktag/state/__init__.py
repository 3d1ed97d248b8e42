"""What outlives a run: SQLite stores, the journal, the quota store, locks, a job's state
and its history."""
