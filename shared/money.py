"""Money: integer øre (1/100 DKK), never float. Inputs are bounded so they fit a BIGINT."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: Ten trillion DKK: far above any budget, far below a BIGINT's limit.
MAX_ORE = 10**15

Ore = Annotated[int, Field(ge=0, le=MAX_ORE, description="An amount in øre (1/100 DKK)")]
