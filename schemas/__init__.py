"""Message contracts: every HTTP body and Pub/Sub payload, as versioned pydantic models."""
