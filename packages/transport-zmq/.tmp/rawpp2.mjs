import { Pull, Push } from 'zeromq';

const role = process.argv[2];
const me = role === 'a' ? 'tcp://127.0.0.1:26011' : 'tcp://127.0.0.1:26012';
const peer = role === 'a' ? 'tcp://127.0.0.1:26012' : 'tcp://127.0.0.1:26011';
const pull = new Pull();
await pull.bind(me);
const push = new Push();
push.connect(peer);
const lat = [];
let t0 = 0;
if (role === 'a') {
  await new Promise((r) => setTimeout(r, 500));
}
for (let i = 0; i < 1000; i++) {
  if (role === 'a') {
    await new Promise((r) => setTimeout(r, 3));
    t0 = performance.now();
    await push.send(new Uint8Array(100));
    const [m] = await pull.receive();
    lat.push(performance.now() - t0);
  } else {
    const [m] = await pull.receive();
    await push.send(m);
  }
}
if (role === 'a') {
  lat.sort((x, y) => x - y);
  console.log('raw p50', lat[500].toFixed(3), 'p99', lat[990].toFixed(3));
}
process.exit(0);
