'use strict';
// Connection limits for a Node HTTP server that faces the internet (the same file
// is in examples/api/src/limits.js; each example stands alone).
//
// Node's own limits bound how long a request head may take (headersTimeout, from its
// first byte) and a whole request (requestTimeout), checked every
// connectionsCheckingInterval; they do not bound how many connections are open, nor
// how long a connection that never sends a byte may stay. guard() adds both:
//  - at most `max` open connections. When a new one would exceed it, the connection
//    that has waited longest without a complete request (an idle keep-alive one, or one
//    still sending its head or body) is closed to make room; only when every open
//    connection holds a complete request still being answered is the new one refused.
//    A flood of slow or idle connections therefore cannot lock out a client that sends
//    its request at once (kai-init's probe of /health included), and what the server
//    buffers for unfinished bodies is at most max x the body limit.
//  - a connection that sends nothing for idleMs before its first request is closed.
function guard(server, { max, idleMs, log }) {
  const open = new Map(); // socket -> { since, req }: req is the request being received or answered
  const counts = { evicted: 0, refused: 0 };
  let lastLog = 0;
  const note = () => {
    const now = Date.now();
    if (now - lastLog >= 10000) { // at most one line every 10 s, however hard the flood
      lastLog = now;
      log('connection limit reached: closing the oldest unfinished connection for each new one',
        { max, evicted: counts.evicted, refused: counts.refused });
    }
  };

  server.on('connection', (socket) => {
    if (open.size >= max) {
      let victim = null;
      let since = Infinity;
      for (const [s, st] of open) {
        if ((st.req === null || !st.req.complete) && st.since < since) {
          victim = s;
          since = st.since;
        }
      }
      note();
      if (victim === null) {
        counts.refused += 1;
        socket.destroy();
        return;
      }
      counts.evicted += 1;
      open.delete(victim);
      victim.destroy();
    }
    const st = { since: Date.now(), req: null };
    open.set(socket, st);
    // Node's own timeout handler destroys the socket when this fires (nothing else
    // listens for 'timeout'); cleared once a request has arrived.
    socket.setTimeout(idleMs);
    socket.once('close', () => open.delete(socket));
  });

  server.on('request', (req, res) => {
    const st = open.get(req.socket);
    if (!st) return;
    st.req = req;
    st.since = Date.now();
    // From here Node's headersTimeout/requestTimeout bound the request; the answer may
    // take as long as the application needs.
    req.socket.setTimeout(0);
    res.once('close', () => {
      st.req = null;
      st.since = Date.now();
    });
  });

  return { stats: () => ({ max, open: open.size, ...counts }) };
}

module.exports = { guard };
