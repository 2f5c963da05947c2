"""End-to-end lab: a store network in Linux network namespaces (see netns.py)."""
