"""The intake service: households, CPR (encrypted), screening, outreach, consent, enrolment, waitlist."""
