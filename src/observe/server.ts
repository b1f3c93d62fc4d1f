/**
 * The observer's web server: a dashboard for one system, on 127.0.0.1 only, behind a random token
 * (in the URL it prints; every request without it gets 403, actions need it in a header so that
 * no other site can post them). JSON views under /api, live updates as Server-Sent Events on
 * /api/stream, the page and its scripts from ./assets (served from the package, nothing fetched),
 * and, opt-in, Prometheus text on /metrics.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counters, prometheusText } from '../host/telemetry.js';
import type { UpgradePlan } from '../host/upgrade-plan.js';
import type { EventRecord, Progress } from '../wire/cli.js';
import type { ObserveApi } from './api.js';
import { ASSETS, indexHtml } from './assets.js';
import { SORT_KEYS, type SortKey } from './query.js';

export interface ObserveOptions {
  /** Port on 127.0.0.1 (default 0: any free port). */
  port?: number;
  /** The token the URL must carry (default: 24 random bytes, hex). */
  token?: string;
  /** Serve Prometheus text on /metrics (token as ?token= or `Authorization: Bearer`). */
  metrics?: boolean;
  /** How often open pages are told to refresh what they show (default 1000 ms). */
  tickMs?: number;
}

export interface Observer {
  /** The dashboard's address, token included. */
  readonly url: string;
  readonly token: string;
  readonly port: number;
  close(): Promise<void>;
}

const RECENT = 300;
const MAX_BODY = 1024 * 1024;

export async function serveObserver(api: ObserveApi, options: ObserveOptions = {}): Promise<Observer> {
  const token = options.token ?? randomBytes(24).toString('hex');
  const tokenBytes = Buffer.from(token);
  const recent: EventRecord[] = [];
  const counters = new Counters();
  const streams = new Set<ServerResponse>();
  let nextOp = 0;

  const broadcast = (event: string, data: unknown): void => {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(text);
  };
  const unfollow = await api.follow((record) => {
    recent.push(record);
    if (recent.length > RECENT) recent.shift();
    counters.count(record.event);
    broadcast('system', record);
  });
  const ticker = setInterval(() => broadcast('tick', { at: Date.now() }), options.tickMs ?? 1000);
  ticker.unref();

  // The page gets a cookie (HttpOnly, SameSite=Strict) for its scripts, fetches and stream; named
  // after the port, since cookies do not tell ports apart. Actions need the header as well.
  let cookieName = 'subnode_observe';
  const cookie = (req: IncomingMessage): string | undefined => {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, v] = part.trim().split('=');
      if (k === cookieName) return v;
    }
    return undefined;
  };
  const authorized = (req: IncomingMessage, url: URL, headerOnly: boolean): boolean => {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const given = (req.headers['x-subnode-token'] as string | undefined) ?? bearer ?? (headerOnly ? undefined : (url.searchParams.get('token') ?? cookie(req)));
    if (!given) return false;
    const bytes = Buffer.from(given);
    return bytes.length === tokenBytes.length && timingSafeEqual(bytes, tokenBytes);
  };

  const send = (res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void => {
    res.writeHead(status, {
      ...extra,
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
  const failure = (res: ServerResponse, error: unknown) => {
    const e = error as { code?: string; message?: string };
    const code = typeof e?.code === 'string' ? e.code : 'internal';
    json(res, code === 'bad_request' || code === 'bad_argument' ? 400 : code.startsWith('unknown') || code === 'no_process' ? 404 : 409, {
      error: { code, message: e?.message ?? String(error) },
    });
  };

  const api_ = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const q = url.searchParams;
    const str = (k: string) => q.get(k) || undefined;
    switch (url.pathname) {
      case '/api/nodes':
        return json(res, 200, await api.nodes());
      case '/api/processes': {
        const sort = (str('sort') ?? 'pid') as SortKey;
        if (!SORT_KEYS.includes(sort)) return json(res, 400, { error: { code: 'bad_request', message: `sort: one of ${SORT_KEYS.join(', ')}` } });
        const int = (k: string, d: number) => {
          const n = Number(q.get(k) ?? d);
          return Number.isInteger(n) && n >= 0 ? n : d;
        };
        return json(
          res,
          200,
          await api.processes({
            node: str('node'),
            filter: str('filter'),
            sort,
            desc: q.get('desc') === '1',
            offset: int('offset', 0),
            limit: Math.max(1, Math.min(int('limit', 50), 500)),
          }),
        );
      }
      case '/api/process':
        return json(res, 200, await api.process(String(q.get('pid'))));
      case '/api/code':
        return json(res, 200, await api.code(str('node')));
      case '/api/events':
        return json(res, 200, recent);
      case '/api/stream': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ recent, describe: api.describe })}\n\n`);
        streams.add(res);
        req.on('close', () => streams.delete(res));
        return;
      }
      case '/api/action': {
        if (req.method !== 'POST') return json(res, 405, { error: { code: 'bad_request', message: 'POST an action' } });
        if (!authorized(req, url, true))
          return json(res, 403, { error: { code: 'forbidden', message: 'actions need the token in the x-subnode-token header' } });
        const body = await readBody(req);
        const id = ++nextOp;
        const { plan: _plan, ...args } = body;
        broadcast('operation', { id, action: body.action, phase: 'start', args });
        try {
          const result = await act(body, (p) => broadcast('progress', { id, action: body.action, ...p }));
          broadcast('operation', { id, action: body.action, phase: 'done', args });
          return json(res, 200, { id, result });
        } catch (error) {
          broadcast('operation', { id, action: body.action, phase: 'failed', args, message: (error as Error).message });
          throw error;
        }
      }
    }
    json(res, 404, { error: { code: 'not_found', message: `no ${url.pathname}` } });
  };

  const act = (body: Record<string, unknown>, progress: (p: Progress) => void): Promise<unknown> => {
    const text = (k: string) => {
      const v = body[k];
      if (typeof v !== 'string' || !v) throw Object.assign(new Error(`${String(body.action)}: '${k}' must be a non-empty string`), { code: 'bad_request' });
      return v;
    };
    switch (body.action) {
      case 'purge':
        return api.purge(text('node'), text('module'), 'kill');
      case 'soft-purge':
        return api.purge(text('node'), text('module'), 'soft');
      case 'migrate':
        return api.migrate(text('pid'), text('node'));
      case 'restart':
        return api.restart(text('node'));
      case 'upgrade': {
        const plan = body.plan as UpgradePlan;
        if (!plan || typeof plan !== 'object' || !Array.isArray(plan.modules))
          throw Object.assign(new Error('upgrade: plan must be an object with modules: [...]'), { code: 'bad_request' });
        return api.upgrade(plan, body.dryRun === true, progress);
      }
    }
    throw Object.assign(new Error(`unknown action ${JSON.stringify(body.action)} (purge, soft-purge, migrate, restart, upgrade)`), { code: 'bad_request' });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (!authorized(req, url, false)) return send(res, 403, 'text/plain; charset=utf-8', 'forbidden: open the URL printed at start (it carries the token)\n');
    void (async () => {
      try {
        if (url.pathname.startsWith('/api/')) return await api_(req, res, url);
        if (url.pathname === '/metrics' && options.metrics) {
          const nodes = await api.nodes();
          return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', prometheusText({ nodes }, counters));
        }
        if (url.pathname === '/' || url.pathname === '/index.html')
          return send(res, 200, 'text/html; charset=utf-8', indexHtml(), { 'set-cookie': `${cookieName}=${token}; HttpOnly; SameSite=Strict; Path=/` });
        const asset = ASSETS[url.pathname];
        if (asset) return send(res, 200, asset.type, asset.body);
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      } catch (error) {
        if (!res.headersSent) failure(res, error);
        else res.end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  cookieName = `subnode_observe_${port}`;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    token,
    port,
    close: async () => {
      clearInterval(ticker);
      unfollow();
      for (const res of streams) res.end();
      streams.clear();
      server.closeAllConnections?.();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error('body too large'), { code: 'bad_request' });
    chunks.push(chunk as Buffer);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    /* below */
  }
  throw Object.assign(new Error('the body must be a JSON object'), { code: 'bad_request' });
}
