"""Webhooks: users' endpoints, the events their batches raise, and signed deliveries with retries."""
