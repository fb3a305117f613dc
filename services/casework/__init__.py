"""The casework service: teams, stationing, makkerpar, family plans, escalation, jobs, outcomes."""
