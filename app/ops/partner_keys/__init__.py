"""Partner API keys and the rate limits of their calls."""
