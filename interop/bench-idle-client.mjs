// Idle socket.io-client fleet for bench/loadgen: COUNT official
// socket.io-client 4 sockets (WebSocket only, one connection each), each
// authenticated with TOKEN and subscribed to ROOM (room:subscribe with ack),
// then idle. Measured from outside (RSS, CPU in /proc), like loadgen.
//
//   node bench-idle-client.mjs URL TOKEN ROOM COUNT [IN_FLIGHT=200]
//
// Prints `ready` once loaded and waits for SIGUSR1 before connecting (so the
// caller can sample the RSS before any connection), then
// `subscribed N failed M` when every socket is done. SIGTERM closes the
// sockets and exits. bench-recv-client.mjs adds counting of broadcasts.
import { io } from "socket.io-client";

export async function connectFleet(url, token, room, count, inFlight, onSocket) {
  let subscribed = 0;
  let failed = 0;
  const sockets = [];
  const one = () =>
    new Promise((resolve) => {
      const s = io(url, {
        transports: ["websocket"],
        auth: { token },
        forceNew: true,
        reconnection: false,
        timeout: 30000,
      });
      sockets.push(s);
      if (onSocket) onSocket(s);
      s.once("connect", () => {
        s.timeout(30000).emit("room:subscribe", { roomId: room }, (err, ack) => {
          if (!err && ack && ack.success) subscribed++;
          else failed++;
          resolve();
        });
      });
      s.once("connect_error", () => {
        failed++;
        resolve();
      });
    });
  let next = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  return { sockets, subscribed, failed };
}

export function main(onSocket, onStop) {
  const [url, token, room, countArg, inFlightArg] = process.argv.slice(2);
  if (!url || !token || !room || !countArg) {
    console.error("usage: node SCRIPT URL TOKEN ROOM COUNT [IN_FLIGHT]");
    process.exit(2);
  }
  let sockets = [];
  process.on("SIGTERM", () => {
    if (onStop) onStop();
    for (const s of sockets) s.disconnect();
    process.exit(0);
  });
  process.once("SIGUSR1", async () => {
    const t0 = Date.now();
    const r = await connectFleet(url, token, room, Number(countArg), Number(inFlightArg || 200), onSocket);
    sockets = r.sockets;
    console.log(`subscribed ${r.subscribed} failed ${r.failed} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  // Keep the event loop alive until SIGTERM.
  setInterval(() => {}, 1 << 30);
  console.log("ready");
}

if (import.meta.url === `file://${process.argv[1]}`) main();
