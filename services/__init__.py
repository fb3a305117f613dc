"""The four services: intake, casework, referrals and finance; each imports only ``shared``."""
