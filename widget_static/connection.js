// The websocket to /ws/widget: the hello frame (with resume) on open, pings before the
// server's idle timeout, reconnecting with exponential backoff, and a probe after sleep or a
// network change. It knows nothing of messages: the panel gives it callbacks and gets every
// frame back.

export class Connection {
  // on: {hello() -> the hello frame, idle() -> seconds or 0, frame(text), closed(event)}
  constructor(server, on) {
    this.url = server.replace(/^http/, "ws") + "/ws/widget";
    this.on = on;
    this.ws = null;
    this.isReady = false;
    this.attempts = 0;
    // failed sessions and sockets since the last `ready`
    this.failures = 0;
    // seconds the server asked us to wait
    this.retryAfter = 0;
  }

  get online() { return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN && this.isReady); }

  // websockets can be blocked (proxies, firewalls) while plain HTTPS works
  get blocked() { return !this.online && this.failures > 2; }

  open() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify(this.on.hello()));
      // the server closes sockets silent for limits.idle_timeout seconds (1001); ping well before
      const idle = this.on.idle();
      if (idle > 0) ws.heartbeat = setInterval(() => ws.send('{"type":"ping"}'), Math.min(60, idle / 3) * 1000);
    });
    ws.addEventListener("message", (event) => {
      this.lastFrame = Date.now();
      this.on.frame(event.data);
    });
    ws.addEventListener("close", (event) => {
      clearInterval(ws.heartbeat);
      // closed on purpose
      if (this.ws !== ws) return;
      this.ws = null;
      this.isReady = false;
      this.failures += 1;
      this.on.closed(event);
    });
  }

  ready() {
    this.isReady = true;
    this.attempts = 0;
    this.failures = 0;
  }

  send(text) { this.ws.send(text); }

  // close for good: no reconnect follows
  close() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
  }

  // close so that the close handler reconnects and resumes
  restart() { if (this.ws) this.ws.close(); }

  retry(again) {
    clearTimeout(this.retryTimer);
    const delay = Math.max(Math.min(30000, 500 * 2 ** this.attempts) * (0.5 + Math.random()), (this.retryAfter || 0) * 1000);
    this.retryAfter = 0;
    this.attempts = Math.min(this.attempts + 1, 10);
    this.retryTimer = setTimeout(again, delay);
  }

  // after sleep or a network change the socket may be dead without knowing it: probe it.
  // True when there is no socket: the caller reconnects at once.
  wake() {
    if (!this.ws) { this.attempts = 0; clearTimeout(this.retryTimer); return true; }
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    const asked = Date.now();
    this.ws.send(JSON.stringify({ type: "ping" }));
    setTimeout(() => { if (this.ws && this.lastFrame < asked) this.ws.close(); }, 4000);
    return false;
  }
}
