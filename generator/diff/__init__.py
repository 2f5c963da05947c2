"""`posnet diff`: what changes between two fleet revisions, computed from their Plans.

items (a Plan as reviewable items) -> compare (store by store) -> formats (text,
JSON, Markdown); sources reads the two sides (folders or Git revisions) and loads only
the stores that can differ.
"""
