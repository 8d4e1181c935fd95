"""Demo data: a believable retailer to chat with."""
