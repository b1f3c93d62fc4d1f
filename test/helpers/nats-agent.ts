// A module for cluster tests: its processes do what their messages say (as in system-messaging).
export const agent = `
  import { receive, send, self, link, monitor, exit, trapExit, registerGlobal } from 'subnode/process';
  export function start(trap = false, observer?: string) { if (trap) trapExit(true); return loop(observer); }
  export function loop(observer?: string): unknown {
    return receive((m: any) => {
      switch (m.op) {
        case 'link': link(m.pid); break;
        case 'monitor': send(m.reply, { ref: monitor(m.pid) }); break;
        case 'crash': throw new Error('crashed on purpose');
        case 'exit': exit(m.pid, m.reason); break;
        case 'send': send(m.to, m.msg); break;
        case 'global': registerGlobal(m.name); break;
        case 'whoami': send(m.reply, self()); break;
        case 'burst': for (let i = 0; i < m.n; i++) send(m.to, { seq: i, from: self() }); break;
        default: if (m.reply) send(m.reply, { got: m }); else if (observer) send(observer, m);
      }
      return loop(observer);
    });
  }
`;

// A server whose state is a number, for calls and migration across hosts.
export const counter = `
  export const vsn = 1;
  export function init(start: number) { return { count: start, seen: {} as Record<string, number> }; }
  export function handleCall(req: any, _from: unknown, state: any) {
    if (req === 'get') return { reply: state.count, state };
    if (req === 'seen') return { reply: state.seen, state };
    return { reply: 'unknown', state };
  }
  export function handleCast(m: any, state: any) { return { noreply: state }; }
  export function handleInfo(m: any, state: any) {
    // { from, seq }: counts, and checks per-sender order (a gap or a repeat is recorded as -1).
    const last = state.seen[m.from] ?? -1;
    state.seen[m.from] = m.seq === last + 1 && last !== -2 ? m.seq : -2;
    state.count++;
    return { noreply: state };
  }
`;
