// The official Node socket.io 4 server doing what the reference server does
// in the fan-out benchmark: authenticate (any non-empty token), room:subscribe
// with ack, and broadcast to a room on an HTTP request. Prints
// `listening on http://127.0.0.1:PORT` once bound. Stopped by the benchmark
// with SIGTERM.
import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer((req, res) => {
  if (req.method === "POST" && req.url.startsWith("/broadcast/")) {
    const room = decodeURIComponent(req.url.slice("/broadcast/".length));
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const { event, data } = JSON.parse(body);
      io.to(room).emit(event, data);
      res.writeHead(202, { "content-type": "application/json" });
      res.end("{}");
    });
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, { transports: ["websocket", "polling"] });
io.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token) return next();
  next(new Error("Authentication failed: Missing token"));
});
io.on("connection", (socket) => {
  socket.on("room:subscribe", (payload, ack) => {
    const roomId = payload && payload.roomId;
    socket.join(roomId);
    socket.emit("room:subscribed", { roomId, timestamp: new Date().toISOString() });
    if (typeof ack === "function") ack({ success: true, room: { id: roomId, name: roomId, status: "active" } });
  });
});

httpServer.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${httpServer.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
