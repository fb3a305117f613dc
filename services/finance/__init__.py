"""The finance service: budgets, co-financing by stationed FTE, settlements, savings."""
