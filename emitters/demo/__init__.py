"""debpulse-demo's parts: the processes it owns, the sample inputs it feeds
the adapters with, a throwaway wanna-build database, and the verifying tail.
The command itself is emitters/commands/demo.py."""
