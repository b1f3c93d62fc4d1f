// greeter, version 1. Loaded into a node as module `greeter`.
import { receive, on, send } from 'subnode/process';
import * as greeter from './greeter.js';

export interface State {
  greeted: number;
}

export function start(): unknown {
  return loop({ greeted: 0 });
}

export function loop(state: State): unknown {
  return receive(
    on({ type: 'greet' }, (m: { name: string; from: string }) => {
      send(m.from, `Hello, ${m.name}. (greeter v1, greeting #${state.greeted + 1})`);
      return loop({ greeted: state.greeted + 1 }); // local call: stays in this version
    }),
    // A qualified call: continue in whatever version of `greeter` is current on this node.
    on({ type: 'switch_code' }, () => greeter.loop(state)),
  );
}
