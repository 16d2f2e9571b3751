"""Ingest: supplier feeds in, validated outlet reports out to Kafka, rejects to dead-letter."""
