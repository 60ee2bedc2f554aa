"""HTTP and websocket endpoints: thin layers that parse, call the domain and render."""
