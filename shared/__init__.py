"""Plumbing shared by the four Opgang til Opgang services, written once."""
