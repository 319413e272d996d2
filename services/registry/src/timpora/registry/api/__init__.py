"""The registry's HTTP API, versioned under ``/v1``."""
