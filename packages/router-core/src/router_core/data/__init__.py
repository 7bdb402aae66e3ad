"""Battle data: the canonical record, loaders for each source schema, filtering and splitting."""
