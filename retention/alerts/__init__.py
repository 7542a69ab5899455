"""Telling the people concerned: alerts to the operator (Apprise), notices to organizers (mail)."""
