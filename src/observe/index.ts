/**
 * The observer for a System embedded in an app: `observe(system, { port })` serves the dashboard
 * on 127.0.0.1 and resolves with its URL (token included). `subnode observe` serves the same
 * dashboard for a system run by `subnode run`, over its control socket.
 */
import type { System } from '../host/system.js';
import { systemApi } from './api.js';
import { serveObserver, type ObserveOptions, type Observer } from './server.js';

export type { ObserveOptions, Observer } from './server.js';
export type { NodeStats, ProcessPage, ProcessDetail, CodeRow, ProcessQuery, SortKey } from './model.js';

/** Serves a live dashboard of `system`; `close()` stops serving (the system goes on). */
export async function observe(system: System, options: ObserveOptions = {}): Promise<Observer> {
  const api = systemApi(system);
  try {
    const observer = await serveObserver(api, options);
    return {
      ...observer,
      url: observer.url,
      token: observer.token,
      port: observer.port,
      close: async () => {
        await observer.close();
        api.close();
      },
    };
  } catch (error) {
    api.close();
    throw error;
  }
}
