"""Model lineage: recognise a resold fine-tune of a known model from its weights alone (issue 10)."""
