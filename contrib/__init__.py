"""Things built on swain's public API: the demo, the testing kit, the
benchmark harness and (later) the SDK generator CLI."""
