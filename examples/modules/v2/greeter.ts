// greeter, version 2: friendlier, and it counts the names it has seen.
import { receive, on, send } from 'subnode/process';
import * as greeter from './greeter.js';

export interface State {
  greeted: number;
  names?: string[];
}

export function start(): unknown {
  return loop({ greeted: 0, names: [] });
}

export function loop(state: State): unknown {
  const names = state.names ?? []; // a v1 state has no names yet
  return receive(
    on({ type: 'greet' }, (m: { name: string; from: string }) => {
      const seen = names.includes(m.name) ? 'again' : 'for the first time';
      send(m.from, `Hi ${m.name}, nice to see you ${seen}! (greeter v2, greeting #${state.greeted + 1})`);
      return loop({ greeted: state.greeted + 1, names: [...names, m.name] });
    }),
    on({ type: 'switch_code' }, () => greeter.loop({ greeted: state.greeted, names })),
  );
}
