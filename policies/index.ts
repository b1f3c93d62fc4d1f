/** Ready-made policy presets. */
export { erlang, erlangKill, stack, forever, drain } from './code.js';
