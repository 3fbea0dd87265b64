"""The proof: Gunicorn's default keep-alive against the generated one (`make proof`)."""
