/**
 * What a node loads, on the host's side: the module allow-list (checked here, on the trusted side,
 * before any source reaches the node), the source's text (a file, the text itself, or the cluster's
 * code store), the compiler; in a cluster, a version loaded here is published to every host.
 */
import { LoadError, NotAllowed } from '../errors.js';
import { allows, type Capabilities } from '../kernel/capabilities.js';
import type { LoadReport } from '../kernel/types.js';
import { isClusterSource, readSource, type ModuleSource } from './source.js';
import { compile } from './compiler-pool.js';
import type { NodeContext } from './node-supervision.js';

export class ModuleSources {
  private readonly events: NodeContext['events'];
  private readonly code: NodeContext['code'];

  constructor(
    private readonly node: string,
    private readonly capabilities: Capabilities,
    context: Pick<NodeContext, 'events' | 'code'>,
  ) {
    this.events = context.events;
    this.code = context.code;
  }

  /** The module allow-list, checked here on the trusted side before any source reaches the node. */
  async compile(module: string, source: ModuleSource): Promise<{ js: string; hazards: LoadReport['warnings']; text: string }> {
    if (!allows(this.capabilities.modules, module)) {
      this.events.emit({ type: 'capability_denied', node: this.node, what: `load module '${module}'` });
      throw new NotAllowed(`node '${this.node}' may not load module '${module}'`, { node: this.node, module });
    }
    const { text, filename } = isClusterSource(source) ? await this.fetched(module, source.cluster) : readSource(module, source);
    return { ...(await compile(module, text, filename)), text };
  }

  /** A `{ cluster }` source: its text from the cluster's code store. */
  private async fetched(module: string, ref: string): Promise<{ text: string; filename: string }> {
    if (!this.code) throw new LoadError(`module '${module}': a { cluster } source needs a system in a cluster`, { module, phase: 'read' });
    return { text: await this.code.fetch(module, ref), filename: `${module}.ts` };
  }

  /** In a cluster, a version loaded here is the module's latest for every host (a fetched one already is). */
  async published(module: string, source: ModuleSource, text: string): Promise<void> {
    if (this.code && !isClusterSource(source)) await this.code.publish(module, text);
  }
}
