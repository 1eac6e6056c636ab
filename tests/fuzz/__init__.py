"""Property-based fuzz tests: malformed input gets a 4xx or a clear notice, never a crash."""
