"""The agent console: server-rendered pages, a small console.js and the /ws/console socket."""
