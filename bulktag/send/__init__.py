"""Talking to LeadLex: the client and its answers, the rate limiter, the run's health,
retries, the dispatcher and its timeline, the pre-check."""
