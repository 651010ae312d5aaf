// Publisher for bench/loadgen: application events over the reference
// server's REST API (POST /api/rooms/ROOM/events with app credentials) at a
// fixed rate, open model (send i is scheduled at start + i / RATE, whatever
// the earlier ones did), each stamped with `sentAtUs` (Unix microseconds, this
// machine's clock) so loadgen records fanout.bench:tick.
//
//   node bench-publish.mjs URL ROOM APP_ID APP_TOKEN RATE SECONDS
//
// Prints one JSON line: {"published":N,"failed":N,"seconds":S}.
const [url, room, appId, appToken, rateArg, secondsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const total = Math.round(rate * Number(secondsArg));
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
let published = 0;
let failed = 0;
const start = performance.now();
const sends = [];
for (let i = 0; i < total; i++) {
  const wait = start + (i * 1000) / rate - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  sends.push(
    fetch(`${url}/api/rooms/${room}/events`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${appToken}`,
        "x-app-id": appId,
        "content-type": "application/json",
      },
      body: JSON.stringify({ event: `${appId}:tick`, data: { seq: i, sentAtUs: nowUs() } }),
      signal: AbortSignal.timeout(30000),
    })
      .then(async (r) => {
        await r.arrayBuffer();
        if (r.ok) published++;
        else failed++;
      })
      .catch(() => failed++),
  );
}
await Promise.all(sends);
console.log(JSON.stringify({ published, failed, seconds: (performance.now() - start) / 1000 }));
