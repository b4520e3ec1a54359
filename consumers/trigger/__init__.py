"""debpulse-trigger: run a command for the messages that match, never through a shell."""
