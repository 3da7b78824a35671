import { ZmqTransport } from '../src/index.ts';

const role = process.argv[2];
const me = role === 'a' ? 'tcp://127.0.0.1:26001' : 'tcp://127.0.0.1:26002';
const peer = role === 'a' ? 'tcp://127.0.0.1:26002' : 'tcp://127.0.0.1:26001';
let t0 = 0;
const lat: number[] = [];
let n = 0;
const t = await ZmqTransport.open<Uint8Array>({
  bind: [me],
  decode: (f) => ({ ok: true, value: f }),
  onMessage: (m) => {
    if (role === 'b') {
      t.send(peer, m);
      return;
    }
    lat.push(performance.now() - t0);
    if (++n < 1000) {
      setTimeout(() => {
        t0 = performance.now();
        t.send(peer, m);
      }, 3);
    } else {
      lat.sort((x, y) => x - y);
      console.log('p50', lat[500].toFixed(3), 'p99', lat[990].toFixed(3));
      process.exit(0);
    }
  },
});
if (role === 'a') {
  await new Promise((r) => setTimeout(r, 500));
  t0 = performance.now();
  t.send(peer, new Uint8Array(100));
}
setTimeout(() => process.exit(1), 20000);
