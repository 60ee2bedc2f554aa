"""Live delivery: frame schemas, who is subscribed to what, and the broker seam."""
