import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** How many sockets an HTTP listener may hold and for how long, so a flood of idle connections cannot take the file descriptors recording needs. */
export interface ConnectionLimits {
  readonly maxConnections: number;
  /** A connection that sends nothing for this long is closed. */
  readonly idleTimeoutMs: number;
}

/**
 * An HTTP server within `limits`: connections past the cap are closed on
 * accept (their descriptor is freed at once), headers must arrive within the
 * idle timeout, and a silent or kept-alive socket is closed after it.
 */
export function createLimitedServer(limits: ConnectionLimits, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const idle = limits.idleTimeoutMs;
  const server = createServer({ connectionsCheckingInterval: Math.max(100, Math.min(30_000, idle / 2)) }, handler);
  server.maxConnections = limits.maxConnections;
  server.headersTimeout = idle;
  server.requestTimeout = Math.max(idle, 30_000);
  server.keepAliveTimeout = Math.min(5_000, idle);
  server.setTimeout(idle, (socket) => socket.destroy());
  return server;
}
