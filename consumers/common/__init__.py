"""What the consumers that tell people share: the facts of a message that
filters and rules look at, and acknowledging in order."""
