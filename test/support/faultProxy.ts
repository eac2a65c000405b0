import { connect, createServer, type Server, type Socket } from 'node:net';

/** pass: forward; refuse: close every new connection at once (the server is down); cut: forward `cutAfter` bytes from the client, then kill the connection. */
export type ProxyMode = 'pass' | 'refuse' | 'cut';

/** Rewrites what a client sends, per connection: return the bytes to forward. */
export type Tap = (chunk: Buffer, sentSoFar: number) => Buffer;

export interface FaultProxy {
  readonly port: number;
  mode: ProxyMode;
  /** For cut: client bytes forwarded (over all connections since cut was set) before the connection carrying them is killed; then the mode goes back to pass. */
  cutAfter: number;
  /** Applied to every client chunk while set. */
  tap: (() => Tap) | null;
  /** What cut turns into after its cut: pass (a glitch) or refuse (the server went down mid-upload). */
  afterCut: ProxyMode;
  /** Connections killed by cut so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 in front of a real server, to make faults a
 * server does not make by itself: it being down, a connection dying in the
 * middle of an upload, bytes corrupted on the way.
 */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  let mode: ProxyMode = 'pass';
  /** Client bytes forwarded since cut was set. */
  let cutSent = 0;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    const tap = proxy.tap?.() ?? null;
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      let out = tap ? tap(chunk, sent) : chunk;
      if (mode === 'cut' && cutSent + out.length >= proxy.cutAfter) {
        out = out.subarray(0, Math.max(0, proxy.cutAfter - cutSent));
        mode = proxy.afterCut;
        proxy.cuts++;
        client.pause();
        upstream.write(out, () => {
          client.destroy();
          upstream.destroy();
        });
        return;
      }
      if (mode === 'cut') cutSent += out.length;
      sent += out.length;
      upstream.write(out);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.once('error', end);
    upstream.once('error', end);
    client.once('end', () => upstream.end());
    upstream.once('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: FaultProxy & { cuts: number } = {
    port: (server.address() as { port: number }).port,
    cutAfter: 0,
    afterCut: 'pass',
    tap: null,
    cuts: 0,
    get mode() {
      return mode;
    },
    set mode(m: ProxyMode) {
      mode = m;
      cutSent = 0;
      if (m === 'refuse') for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  return proxy;
}
