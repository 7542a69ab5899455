"""The GoTo Meeting API: auth, client, models and time parsing; the only code that speaks HTTP."""
