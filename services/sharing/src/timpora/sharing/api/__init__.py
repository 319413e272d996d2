"""The sharing service's HTTP API for agencies, versioned under ``/v1``."""
