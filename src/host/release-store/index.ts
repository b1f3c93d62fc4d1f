/** The release store: the interface, the pure replay, the directory implementation, its errors. */
export * from './store.js';
export * from './errors.js';
export { replay, currentModules, releasesOf, lastPermanentOf, checkStep } from './replay.js';
export { DirectoryReleaseStore, type DirectoryStoreOptions } from './directory.js';
export { FORMAT_VERSION } from './format.js';
export { measureStore, type StoreMeasurement } from './measure.js';
export { DirectoryStateStore, MemoryStateStore, STATE_FORMAT, type StateStore, type StoredState, type StateStoreOpen } from './states.js';
