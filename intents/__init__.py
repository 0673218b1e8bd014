"""Language detection and intent matching. Pure functions over an index built once from the knowledge base."""
