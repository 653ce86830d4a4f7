"""Everything about talking to SaladCloud: models, client, rate limiter, and a simulator."""
