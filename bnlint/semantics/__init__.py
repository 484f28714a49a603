"""The semantic layer: what the code means. Rules read this, never raw syntax."""
