// Interop peer: the official socket.io-client@4 against the reference server.
// Usage: node client-check.mjs BASE_URL TOKEN ROOM_ID TRANSPORT
// Prints one JSON line per step to stdout; the Rust test drives the server
// side (broadcast) through the REST API when it sees the "subscribed" line,
// and judges every line. Exits 0 when every step ran, 1 otherwise.
import { io } from "socket.io-client";

const [base, token, roomId, transport] = process.argv.slice(2);
const transports = transport === "polling" ? ["polling"] : ["websocket"];
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const deadline = setTimeout(() => { say({ step: "timeout" }); process.exit(1); }, 15000);

// 1. A bad token is refused with the documented message.
await new Promise((resolve) => {
  const bad = io(base, { auth: { token: "not-a-jwt" }, transports, reconnection: false, forceNew: true });
  bad.on("connect", () => { say({ step: "bad_token", connected: true }); bad.close(); resolve(); });
  bad.on("connect_error", (err) => { say({ step: "bad_token", connected: false, message: err.message }); bad.close(); resolve(); });
});

// 2. A valid token connects, subscribes with an ack, and receives a broadcast.
const socket = io(base, { auth: { token }, transports, reconnection: false, forceNew: true });
socket.on("connect_error", (err) => { say({ step: "connect_error", message: err.message }); process.exit(1); });
socket.on("connect", () => {
  say({ step: "connected", transport: socket.io.engine.transport.name });
  socket.emit("room:subscribe", { roomId }, (ack) => say({ step: "subscribed", ack }));
});
socket.on("room:updated", (data) => {
  say({ step: "broadcast", event: "room:updated", data });
  clearTimeout(deadline);
  socket.close();
  process.exit(0);
});
