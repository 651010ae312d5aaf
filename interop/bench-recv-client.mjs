// Receiving socket.io-client fleet for bench/loadgen: the idle fleet of
// bench-idle-client.mjs (same arguments, same `ready` / SIGUSR1 /
// `subscribed N failed M`), and every socket counts the `bench:tick`
// broadcasts it receives. On SIGTERM prints `received N` and exits.
import { main } from "./bench-idle-client.mjs";

let received = 0;
main(
  (s) => s.on("bench:tick", () => {
    received++;
  }),
  () => console.log(`received ${received}`),
);
