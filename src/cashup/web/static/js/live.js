// The live layer: the service's event WebSocket (/api/v1/ws), or refetching on a timer when it is not there.
//
// Protocol: the first message authenticates ({"op": "auth", "token"}: browsers cannot set headers and a
// token never goes in a URL), the second narrows and resumes ({"op": "subscribe", "resume": {stream: seq}});
// every frame is {event_id, stream, seq, type, at, data} (a "heartbeat" frame when idle). The pages do not rebuild state from frames: a
// frame tells them which resources changed and they read those from the API, so what they show is always
// what the API says. Without a socket (not deployed, refused, dropped) they read them every POLL_MS.

const POLL_MS = 2000;
const RETRY_MS = [1000, 2000, 5000, 10000];

export class Live {
  constructor(indicator) {
    this.indicator = indicator;
    this.watchers = new Set();
    this.lastSeq = {};
    this.socket = null;
    this.open = false;
    this.attempt = 0;
    this.token = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.pending = new Map();
  }

  /** Call `refresh(frame)` when an event whose type starts with one of `prefixes` arrives, or `refresh(null)` on
   * every poll while there is no socket. */
  watch(prefixes, refresh) {
    const watcher = { prefixes, refresh };
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  start(token) {
    this.stop();
    this.token = token;
    this.connect();
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
  }

  stop() {
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.token = null;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    this.socket = null;
    this.open = false;
    this.show("");
  }

  connect() {
    if (!this.token || !("WebSocket" in window)) return this.show("polling");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
    } catch {
      return this.retry();
    }
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ op: "auth", token: this.token }));
      const resume = Object.keys(this.lastSeq).length ? { resume: this.lastSeq } : {};
      socket.send(JSON.stringify({ op: "subscribe", ...resume }));
    };
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      // An error frame comes just before the server closes the socket (bad token, bad request): keep polling.
      if (!frame || typeof frame.type !== "string" || frame.type === "error") return;
      if (!this.open) {
        this.open = true;
        this.attempt = 0;
        this.show("live");
      }
      if (frame.stream && Number.isInteger(frame.seq)) this.lastSeq[frame.stream] = frame.seq;
      this.dispatch(frame);
    };
    socket.onerror = () => {};
    socket.onclose = () => {
      this.open = false;
      this.socket = null;
      this.retry();
    };
    // A socket that opens but never speaks is as good as none until its first frame: keep polling meanwhile.
    this.show("polling");
  }

  retry() {
    this.open = false;
    this.show("polling");
    if (!this.token) return;
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Refresh the watchers of a frame's type, at most once per animation frame each (with the latest frame). */
  dispatch(frame) {
    const { type } = frame;
    for (const watcher of this.watchers) {
      if (watcher.prefixes.some((prefix) => type === prefix || type.startsWith(`${prefix}.`))) this.schedule(watcher, frame);
    }
  }

  poll() {
    if (this.open) return;
    for (const watcher of this.watchers) this.schedule(watcher);
  }

  schedule(watcher, frame = null) {
    const pending = this.pending.get(watcher);
    if (pending) {
      pending.frame = frame || pending.frame;
      return;
    }
    const entry = { frame };
    this.pending.set(watcher, entry);
    requestAnimationFrame(() => {
      this.pending.delete(watcher);
      if (this.watchers.has(watcher)) watcher.refresh(entry.frame);
    });
  }

  show(state) {
    if (!this.indicator) return;
    const text = { live: "Live", polling: "Refreshing every 2 s", "": "" }[state];
    this.indicator.textContent = text;
    this.indicator.dataset.state = state;
    this.indicator.title = state === "live" ? "Updates arrive on the event stream"
      : state === "polling" ? "The event stream is not available: the page reads the API every 2 seconds" : "";
  }
}
