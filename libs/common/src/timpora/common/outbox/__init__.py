"""The transactional outbox, written once: its table and the relay that publishes it to Kafka."""
