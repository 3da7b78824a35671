import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for EC2's Query API on 127.0.0.1, so the real SDK client (request signing,
 * form encoding, XML parsing, error codes from the response body) runs against it. It keeps
 * instances in memory; `failNext` queues error responses as EC2 would send them.
 */
export type FakeState = 'pending' | 'running' | 'shutting-down' | 'stopping' | 'terminated';

export interface FakeInstance {
  id: string;
  ip: string;
  state: FakeState;
  tags: Map<string, string>;
}

const STATE_CODES: Record<FakeState, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
};

export interface FakeRequest {
  action: string;
  params: URLSearchParams;
  authorization: string;
}

export class FakeEc2 {
  readonly requests: FakeRequest[] = [];
  readonly instances: FakeInstance[] = [];
  private readonly failures: { action: string; status: number; code: string; message: string }[] = [];
  /** The state RunInstances gives a new instance (EC2's own is pending; running saves waiting). */
  launchState: FakeState = 'running';
  /** The state TerminateInstances leaves one in (EC2's is shutting-down for a minute or so). */
  terminateState: FakeState = 'terminated';
  private server: Server | null = null;

  failNext(action: string, status: number, code: string, message = code): void {
    this.failures.push({ action, status, code, message });
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        const params = new URLSearchParams(body);
        const action = params.get('Action') ?? '';
        this.requests.push({ action, params, authorization: String(req.headers.authorization ?? '') });
        const failure = this.failures.findIndex((f) => f.action === action);
        if (failure >= 0) {
          const [f] = this.failures.splice(failure, 1);
          res.writeHead(f?.status ?? 500, { 'content-type': 'text/xml' });
          res.end(
            `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${f?.code}</Code><Message>${f?.message}</Message></Error></Errors><RequestID>req-1</RequestID></Response>`,
          );
          return;
        }
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(this.answer(action, params));
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** The instance named `name` (the paxos:name tag) that is not terminated. */
  byName(name: string): FakeInstance | undefined {
    return this.instances.find((i) => i.tags.get('paxos:name') === name && i.state !== 'terminated');
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private answer(action: string, p: URLSearchParams): string {
    const ns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"';
    if (action === 'RunInstances') {
      const tags = new Map<string, string>();
      for (let i = 1; p.has(`TagSpecification.1.Tag.${i}.Key`); i++) {
        tags.set(
          p.get(`TagSpecification.1.Tag.${i}.Key`) ?? '',
          p.get(`TagSpecification.1.Tag.${i}.Value`) ?? '',
        );
      }
      const n = this.instances.length + 1;
      const instance: FakeInstance = {
        id: `i-fake${String(n).padStart(8, '0')}`,
        ip: `10.9.0.${n}`,
        state: this.launchState,
        tags,
      };
      this.instances.push(instance);
      return `<RunInstancesResponse ${ns}><requestId>r</requestId><reservationId>r-${n}</reservationId><instancesSet>${item(instance)}</instancesSet></RunInstancesResponse>`;
    }
    if (action === 'DescribeInstances') {
      const ids = values(p, 'InstanceId');
      const filters: [string, string[]][] = [];
      for (let i = 1; p.has(`Filter.${i}.Name`); i++)
        filters.push([p.get(`Filter.${i}.Name`) ?? '', values(p, `Filter.${i}.Value`)]);
      const found = this.instances.filter(
        (x) =>
          (ids.length === 0 || ids.includes(x.id)) &&
          filters.every(([name, vs]) =>
            name === 'instance-state-name'
              ? vs.includes(x.state)
              : name.startsWith('tag:')
                ? vs.includes(x.tags.get(name.slice(4)) ?? '')
                : true,
          ),
      );
      const reservations =
        found.length === 0
          ? ''
          : `<item><reservationId>r</reservationId><instancesSet>${found.map(item).join('')}</instancesSet></item>`;
      return `<DescribeInstancesResponse ${ns}><requestId>r</requestId><reservationSet>${reservations}</reservationSet></DescribeInstancesResponse>`;
    }
    if (action === 'TerminateInstances') {
      const ids = values(p, 'InstanceId');
      for (const x of this.instances) if (ids.includes(x.id)) x.state = this.terminateState;
      return `<TerminateInstancesResponse ${ns}><requestId>r</requestId><instancesSet></instancesSet></TerminateInstancesResponse>`;
    }
    return `<Response><Errors><Error><Code>InvalidAction</Code><Message>${action}</Message></Error></Errors></Response>`;
  }
}

/** `Name.1`, `Name.2`, … of a Query API list. */
function values(p: URLSearchParams, name: string): string[] {
  const out: string[] = [];
  for (let i = 1; p.has(`${name}.${i}`); i++) out.push(p.get(`${name}.${i}`) ?? '');
  return out;
}

function item(x: FakeInstance): string {
  const tags = [...x.tags].map(([k, v]) => `<item><key>${k}</key><value>${v}</value></item>`).join('');
  return `<item><instanceId>${x.id}</instanceId><privateIpAddress>${x.ip}</privateIpAddress><instanceState><code>${STATE_CODES[x.state]}</code><name>${x.state}</name></instanceState><launchTime>2026-11-24T12:00:00.000Z</launchTime><tagSet>${tags}</tagSet></item>`;
}
