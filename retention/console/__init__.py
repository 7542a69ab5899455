"""The compliance officer's console: proposals, explanations and the record, in a browser."""
