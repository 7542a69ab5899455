"""The pipeline: scan → inventory → decide → plan → execute → reconcile."""
