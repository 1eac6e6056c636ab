"""Default price and context-window tables of the current models (override them in settings)."""

from __future__ import annotations

# USD per 1M tokens: (input, cached input, output). Prices change: override with MODEL_PRICES (JSON).
DEFAULT_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-6-luna": (0.10, 0.01, 0.50),
    "gpt-6.1-sol": (2.00, 0.20, 10.00),
    "gpt-6-sol": (2.00, 0.20, 10.00),
    "gpt-6.2-sol": (2.00, 0.20, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4o": (2.50, 1.25, 10.00),
}


# Context windows in tokens; a model not listed uses CONTEXT_WINDOW. Override with MODEL_CONTEXT_WINDOWS.
DEFAULT_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-6-luna": 400_000,
    "gpt-6-sol": 400_000,
    "gpt-6.1-sol": 400_000,
    "gpt-6.2-sol": 400_000,
    "gpt-6-astra": 400_000,
    "gpt-6.2-astra": 400_000,
    "gpt-6.1-terra": 400_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
}
