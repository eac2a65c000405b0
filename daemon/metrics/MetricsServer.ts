import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/Config.js';
import { createLimitedServer, type ConnectionLimits } from '../net/httpLimits.js';
import type { Logger } from '../log.js';
import type { Metrics } from './Metrics.js';

/** `GET /metrics` in the Prometheus text format, on its own listener (no token: bind it to loopback or a management network). */
export class MetricsServer {
  private readonly server: Server;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
    limits: ConnectionLimits,
  ) {
    this.server = createLimitedServer(limits, (req, res) => {
      if (req.url !== '/metrics' && !req.url?.startsWith('/metrics?')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      this.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (err: Error) => {
          this.log.error({ err }, 'metrics collection failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
    });
  }

  listen(at: ListenAddress): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(at.port, at.host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
