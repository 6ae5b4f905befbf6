// app.js: connects to the node's WebSocket (the control protocol, one JSON object per
// message) and says which node answered; reconnects when the node restarts.
"use strict";

function connect() {
  const status = document.getElementById("status");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(scheme + "//" + location.host + "/ws");
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.event === "hello")
      status.textContent = "connected to " + event.node + " (hark " + event.version + ")";
  };
  socket.onclose = () => {
    status.textContent = "disconnected; reconnecting…";
    setTimeout(connect, 1000);
  };
}

connect();
