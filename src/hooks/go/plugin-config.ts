/**
 * config.json `goPlugin`: a prebuilt go-plugin program that serves a collection's hooks (any
 * program that speaks hooks.proto over go-plugin with our handshake, e.g. one built with hooks-go's
 * Register and Serve). Two forms:
 *
 *   "goPlugin": "./bin/myhooks"                                   every event without a hook file
 *   "goPlugin": { "path": "./bin/myhooks", "events": ["post"] }   only these events
 *
 * The path is relative to the app folder. An event the program has no handler for passes through
 * unchanged (hooks-go answers it without a cancel), so naming the events saves a call per event.
 * The program is started as it is: nothing is built, and replacing the file takes effect when
 * config.json changes or the server restarts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HookSource } from '../hook-runner.js';
import { HOOK_EVENTS, type HookEvent } from '../protocol.js';

export interface GoPluginHooks {
  hooks: HookSource[];
  /** Events that a hook file and the plugin both claim, or .go files beside a plugin: why. */
  conflicts: Partial<Record<HookEvent, string>>;
}

/**
 * The hook sources `goPlugin` adds to collection `name` (whose hook files are `files`). Throws an
 * Error saying what is wrong with a malformed value (the registry reports it as a config error).
 */
export function goPluginHooks(name: string, value: unknown, appDir: string, files: HookSource[]): GoPluginHooks {
  const out: GoPluginHooks = { hooks: [], conflicts: {} };
  if (value === undefined || value === null) return out;
  let relative: unknown;
  let events: unknown;
  if (typeof value === 'string') relative = value;
  else if (typeof value === 'object' && !Array.isArray(value)) ({ path: relative, events } = value as Record<string, unknown>);
  if (typeof relative !== 'string' || relative.trim() === '') {
    throw new Error('"goPlugin" must be a path ("./bin/myhooks") or {"path": "./bin/myhooks", "events": ["post", …]}');
  }
  if (events !== undefined && (!Array.isArray(events) || events.some((e) => typeof e !== 'string' || !(HOOK_EVENTS as readonly string[]).includes(e)))) {
    throw new Error(`"goPlugin.events" must list events among ${HOOK_EVENTS.join(', ')}`);
  }
  const binary = path.resolve(appDir, relative);
  const label = `${relative} (goPlugin of ${name})`;
  const byEvent = new Map(files.map((f) => [f.event, f]));
  for (const f of files) {
    if (f.file.endsWith('.go')) out.conflicts[f.event] = `${f.file}: ${name} uses the prebuilt goPlugin ${relative}; put this hook in that program or remove "goPlugin"`;
  }
  const wanted = (events as HookEvent[] | undefined) ?? HOOK_EVENTS.filter((e) => !byEvent.has(e));
  for (const event of new Set(wanted)) {
    const file = byEvent.get(event);
    if (file && !file.file.endsWith('.go')) {
      out.conflicts[event] = `${file.file} and goPlugin ${relative} both define the ${event} event: keep one`;
      continue;
    }
    out.hooks.push({ event, file: label, source: '', plugin: binary });
  }
  return out;
}

/** Whether `file` can be run (for a clear load error instead of a failed spawn). */
export function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}
