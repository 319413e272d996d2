"""HTTP plumbing every service shares: health, readiness, metrics."""
