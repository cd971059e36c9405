"""The JSON API (flask-smorest): `/api/v1/…`."""
