/**
 * A cut-able route to a TCP server, for partition tests: a host connects through it instead of
 * straight to the server. `cut()` destroys every connection through it and refuses new ones (each
 * is closed as it opens) until `heal()`.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class Route {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private open = true;
  port = 0;

  private constructor(targetPort: number) {
    this.server = createServer((client) => {
      if (!this.open) return void client.destroy();
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  /** A route on a free port of 127.0.0.1 to `targetPort` there. */
  static async to(targetPort: number): Promise<Route> {
    const route = new Route(targetPort);
    await new Promise<void>((resolve, reject) => {
      route.server.once('error', reject);
      route.server.listen(0, '127.0.0.1', resolve);
    });
    route.port = (route.server.address() as { port: number }).port;
    return route;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }

  heal(): void {
    this.open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
