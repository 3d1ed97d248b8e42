"""A run from start to end: the runner, a dispatch session, the run folder and its files."""
