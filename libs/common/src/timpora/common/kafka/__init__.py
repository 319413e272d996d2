"""Kafka plumbing: the broker factory, topic creation from the catalog, and the inbox consumer."""
