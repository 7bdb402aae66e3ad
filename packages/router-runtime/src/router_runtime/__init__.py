"""router_runtime package."""
