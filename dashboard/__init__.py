"""The reference department dashboard: one department's live slice, folded from its topic, in the browser.

``oto dashboard <department>`` runs it; docs/dashboards.md says how a dashboard team builds its
own on the same fold (``dashboard.fold``).
"""
