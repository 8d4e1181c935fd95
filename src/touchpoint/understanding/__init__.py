"""What a customer's free text means: intents, entities, and the FAQ and catalogue matcher."""
