import { describe, expect, it } from 'vitest';
import { endpointFor, formatAddress, parseAddress } from '../src/address.ts';

describe('addresses', () => {
  const proposer = 'tcp://127.0.0.1:11000,tcp://127.0.0.1:11100,tcp://127.0.0.1:11200';
  const proxy = 'tcp://127.0.0.1:12100,tcp://127.0.0.1:12200';

  it('route each message type to the socket of the port table', () => {
    expect(endpointFor(proposer, 'ClientBatch')).toBe('tcp://127.0.0.1:11000');
    expect(endpointFor(proposer, 'Phase1b')).toBe('tcp://127.0.0.1:11100');
    expect(endpointFor(proposer, 'Chosen')).toBe('tcp://127.0.0.1:11100');
    expect(endpointFor(proposer, 'Nack')).toBe('tcp://127.0.0.1:11100');
    expect(endpointFor(proposer, 'Heartbeat')).toBe('tcp://127.0.0.1:11200');
    expect(endpointFor(proxy, 'Phase2a')).toBe('tcp://127.0.0.1:12100');
    expect(endpointFor(proxy, 'Phase2b')).toBe('tcp://127.0.0.1:12200');
    expect(endpointFor(proxy, 'Nack')).toBe('tcp://127.0.0.1:12200');
    expect(endpointFor('tcp://127.0.0.1:14000', 'Chosen')).toBe('tcp://127.0.0.1:14000');
    expect(endpointFor('tcp://127.0.0.1:10000#c3', 'ClientReply')).toBe('tcp://127.0.0.1:10000');
  });

  it("route the acceptors' watermark and retire messages: requests to the acceptor, replies to 11100", () => {
    const acceptor = 'tcp://127.0.0.1:12000';
    expect(endpointFor(acceptor, 'WatermarkA')).toBe(acceptor);
    expect(endpointFor(acceptor, 'Retire')).toBe(acceptor);
    expect(endpointFor(proposer, 'WatermarkB')).toBe('tcp://127.0.0.1:11100');
    expect(endpointFor(proposer, 'RetireB')).toBe('tcp://127.0.0.1:11100');
  });

  it('format and parse round-trip, with a tag for clients sharing a socket', () => {
    const a = formatAddress(['tcp://10.0.0.1:1', 'tcp://h:2'], 'x.1');
    expect(parseAddress(a)).toEqual({ endpoints: ['tcp://10.0.0.1:1', 'tcp://h:2'], tag: 'x.1' });
  });

  it('reject anything but tcp://host:port lists, naming the bad value', () => {
    for (const bad of ['', '127.0.0.1:1000', 'tcp://h', 'tcp://h:1,', 'udp://h:1', 'tcp://h:1 ,tcp://h:2']) {
      expect(() => parseAddress(bad)).toThrow(/bad address/);
    }
    expect(() => formatAddress(['tcp://h:70000'])).toThrow(/port 70000 is out of range/);
  });
});
