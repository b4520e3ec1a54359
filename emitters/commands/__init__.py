"""The bus command-line tools: logger, tail, relay, dns, demo."""
