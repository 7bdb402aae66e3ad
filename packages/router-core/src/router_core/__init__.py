"""router_core package."""
