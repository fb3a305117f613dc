"""The referrals service: department offers, cross-department referrals, department inboxes."""
