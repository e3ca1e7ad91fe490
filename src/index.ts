export { createServer, type DeploydServer, type ServerOptions } from './server.js';
export { DeploydError, Errors } from './errors.js';
export type { Store, CollectionStore } from './store/store.js';
export type { Doc } from './core/document.js';
export type { UpdateSpec } from './core/update.js';
export type { FindOptions } from './core/filter.js';
export { runHook, type RunHookContext, type RunHookResult } from './hooks/run-hook.js';
