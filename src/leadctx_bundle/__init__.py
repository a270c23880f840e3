"""leadctx_bundle: what context goes into the prompt, and what did it cost?

The data plane: builds the shared LeadContextBundle (knowledge assets, lead memory, the recent
thread) under per-pipeline token budgets, with content-free stats.
"""

__all__: list[str] = []
