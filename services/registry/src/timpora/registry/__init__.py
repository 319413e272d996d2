"""TIMPORA registry: Immigration's source of truth for foreigners; every committed change is published to Kafka."""
