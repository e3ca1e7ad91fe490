export { createServer, type DeploydServer, type ServerOptions } from './server.js';
export { DeploydError, Errors } from './errors.js';
export type { Store, CollectionStore, Doc, UpdateSpec, FindOptions } from './store/store.js';
export { runHook, type RunHookContext, type RunHookResult } from './hooks/run-hook.js';
