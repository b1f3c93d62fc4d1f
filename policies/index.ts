/** Ready-made policy presets: code policies (retention × purge) and node policies (capabilities × limits). */
export { erlang, erlangKill, stack, forever, drain } from './code.js';
export { sandboxed, trusted, legacyPinned, sandboxedTalkingTo, type NodePolicy } from './capabilities.js';
