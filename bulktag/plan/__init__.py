"""The plan: contacts and the tags to send them, and what is skipped."""
