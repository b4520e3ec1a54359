"""wanna-build: build-state changes out of PostgreSQL."""
