/**
 * Turns request bodies into documents and update specs: drops undeclared fields, coerces values to
 * their declared types (as Deployd, except a non-numeric string for a number is an error, not NaN),
 * applies defaults, checks `required`, and reads update commands in both Deployd's per-property form
 * (`{"n":{"$inc":1}}`) and MongoDB's top-level form (`{"$inc":{"n":1}}`).
 */
import { isDeepStrictEqual } from 'node:util';
import { Errors, validationError } from '../errors.js';
import { coerceValue } from './coerce.js';
import { NUMERIC } from '../util/input.js';
import { applyUpdate, emptyUpdate, type UpdateSpec } from './update.js';
import type { CollectionSchema, PropertyDef } from './schema.js';

/** A stored document: `id` plus its fields. */
export type Doc = { id: string } & Record<string, unknown>;

const COMMANDS = new Set(['$inc', '$push', '$pushAll', '$pull', '$pullAll', '$addUnique', '$set', '$unset']);
const SERVER_MANAGED = new Set(['id', 'createdAt', 'updatedAt']);

type Errs = Record<string, string>;

/** A value "exists" for `required` unless it is missing, null or an empty string (Deployd). */
function exists(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

function isCommandObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k.startsWith('$'));
}

/** Collects the update commands and plain values of a body into one spec. */
function readBody(schema: CollectionSchema, body: Record<string, unknown>, errors: Errs): UpdateSpec {
  const spec = emptyUpdate();
  const perProperty: Array<[string, string, unknown]> = [];
  for (const [key, value] of Object.entries(body)) {
    if (COMMANDS.has(key)) {
      // MongoDB form: {"$inc": {"n": 1}}
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        errors[key] = 'must be an object of fields';
        continue;
      }
      for (const [field, arg] of Object.entries(value)) perProperty.push([field, key, arg]);
      continue;
    }
    if (key.startsWith('$')) continue; // $skipEvents and other request flags
    if (isCommandObject(value)) {
      const cmds = Object.entries(value);
      const unknown = cmds.find(([cmd]) => !COMMANDS.has(cmd));
      if (unknown) {
        errors[key] = `unknown update command ${unknown[0]}`;
        continue;
      }
      for (const [cmd, arg] of cmds) perProperty.push([key, cmd, arg]);
      continue;
    }
    perProperty.push([key, '$set', value]);
  }
  for (const [field, cmd, arg] of perProperty) {
    const prop = schema.properties.get(field);
    if (!prop || SERVER_MANAGED.has(field)) continue; // undeclared and server-managed fields are dropped
    applyCommand(spec, prop, cmd, arg, errors);
  }
  return spec;
}

function applyCommand(spec: UpdateSpec, prop: PropertyDef, cmd: string, arg: unknown, errors: Errs): void {
  const field = prop.name;
  switch (cmd) {
    case '$set': {
      const result = coerceValue(prop, arg);
      if ('error' in result) errors[field] = result.error;
      else spec.set[field] = result.value;
      return;
    }
    case '$unset':
      spec.unset.push(field);
      return;
    case '$inc': {
      if (prop.type !== 'number') { errors[field] = '$inc needs a number property'; return; }
      const n = typeof arg === 'string' && NUMERIC.test(arg.trim()) ? Number(arg.trim()) : arg;
      if (typeof n !== 'number' || !Number.isFinite(n)) { errors[field] = '$inc needs a number'; return; }
      spec.inc[field] = (spec.inc[field] ?? 0) + n;
      return;
    }
    default: {
      if (prop.type !== 'array') { errors[field] = `${cmd} needs an array property`; return; }
      const many = cmd === '$pushAll' || cmd === '$pullAll';
      if (many && !Array.isArray(arg)) { errors[field] = `${cmd} needs an array`; return; }
      const items = many ? (arg as unknown[]) : cmd === '$addUnique' && Array.isArray(arg) ? arg : [arg];
      const target = cmd === '$push' || cmd === '$pushAll' ? spec.push : cmd === '$pull' || cmd === '$pullAll' ? spec.pull : spec.addUnique;
      target[field] = [...(target[field] ?? []), ...items];
    }
  }
}

/** A new document from a POST body (without id), or a 400 with every field's error. */
export function prepareCreate(schema: CollectionSchema, body: Record<string, unknown>, now: Date): Record<string, unknown> {
  const { doc, errors } = readCreate(schema, body);
  return completeCreate(schema, doc, now, errors);
}

/**
 * First half of a create: the body's declared fields, coerced, with update commands applied
 * (`{"tags":{"$push":"a"}}` → `["a"]`). Errors are returned, not thrown, so that `required` is
 * judged later on what the client did send (a bad number must not also report a title missing).
 */
export function readCreate(schema: CollectionSchema, body: Record<string, unknown>): { doc: Record<string, unknown>; errors: Errs } {
  const errors: Errs = {};
  const spec = readBody(schema, body, errors);
  // Applied to an empty document: a `delete` of a placeholder id would turn every new document
  // into a slow dictionary-mode object for the rest of the request.
  const doc: Record<string, unknown> = applyUpdate({} as Doc, spec);
  if ('id' in doc) delete doc.id;
  return { doc, errors };
}

/**
 * Second half, after the validate hook: re-coerces declared fields a hook may have set, applies
 * defaults, stores an absent optional boolean as false (Deployd), checks `required`, stamps times.
 */
export function completeCreate(schema: CollectionSchema, doc: Record<string, unknown>, now: Date, errors: Errs = {}): Record<string, unknown> {
  for (const prop of schema.properties.values()) {
    if (SERVER_MANAGED.has(prop.name) || errors[prop.name]) continue;
    if (doc[prop.name] !== undefined) {
      const result = coerceValue(prop, doc[prop.name]);
      if ('error' in result) errors[prop.name] = result.error;
      else doc[prop.name] = result.value;
      continue;
    }
    if (prop.default !== undefined) {
      const fallback = prop.type === 'date' && prop.default === 'now' ? now.toISOString() : structuredClone(prop.default);
      const result = coerceValue(prop, fallback);
      if ('error' in result) errors[prop.name] = `default ${result.error}`;
      else doc[prop.name] = result.value;
    }
    if (prop.type === 'boolean' && !prop.required && doc[prop.name] === undefined) doc[prop.name] = false;
    if (prop.required && !exists(doc[prop.name])) errors[prop.name] = 'is required';
  }
  for (const prop of schema.properties.values()) {
    if (prop.required && !errors[prop.name] && !exists(doc[prop.name])) errors[prop.name] = 'is required';
  }
  if (Object.keys(errors).length > 0) throw validationError(errors);
  if (schema.timestamps) {
    doc.createdAt = now.toISOString();
    doc.updatedAt = now.toISOString();
  }
  return doc;
}

/**
 * Folds what update hooks changed in the document into the update spec: fields they set or
 * changed become `$set` (replacing any command on that field), fields they deleted `$unset`, and
 * protected fields keep their stored value whatever the body asked.
 */
export function applyHookChanges(schema: CollectionSchema, spec: UpdateSpec, preview: Record<string, unknown>, final: Record<string, unknown>, protectedFields: string[]): UpdateSpec {
  const errors: Errs = {};
  const out: UpdateSpec = { set: { ...spec.set }, unset: [...spec.unset], inc: { ...spec.inc }, push: { ...spec.push }, pull: { ...spec.pull }, addUnique: { ...spec.addUnique } };
  const drop = (field: string) => {
    delete out.set[field];
    delete out.inc[field];
    delete out.push[field];
    delete out.pull[field];
    delete out.addUnique[field];
    out.unset = out.unset.filter((f) => f !== field);
  };
  for (const [field, value] of Object.entries(final)) {
    if (field === 'id' || isDeepStrictEqual(value, preview[field])) continue;
    drop(field);
    const prop = schema.properties.get(field);
    if (prop) {
      const result = coerceValue(prop, value);
      if ('error' in result) { errors[field] = result.error; continue; }
      out.set[field] = result.value;
    } else out.set[field] = value;
  }
  for (const field of Object.keys(preview)) {
    if (field !== 'id' && !(field in final)) {
      drop(field);
      out.unset.push(field);
    }
  }
  for (const field of protectedFields) drop(field);
  if (Object.keys(errors).length > 0) throw validationError(errors);
  return out;
}

/** The update commands of a PUT body, coerced to the declared types (400 on a bad value). */
export function readUpdate(schema: CollectionSchema, body: Record<string, unknown>): UpdateSpec {
  const errors: Errs = {};
  const spec = readBody(schema, body, errors);
  if (Object.keys(errors).length > 0) throw validationError(errors);
  return spec;
}

/**
 * The document as it will be if nobody else writes first (hooks see this), once `required` holds
 * for what the update sets or removes; stamps `updatedAt` into the spec.
 */
export function previewUpdate(schema: CollectionSchema, spec: UpdateSpec, previous: Record<string, unknown> & { id: string }, now: Date): Record<string, unknown> {
  const errors: Errs = {};
  const preview = applyUpdate(previous, spec);
  for (const field of [...Object.keys(spec.set), ...spec.unset]) {
    const prop = schema.properties.get(field);
    if (prop?.required && !exists(preview[field])) errors[field] = 'is required';
  }
  if (Object.keys(errors).length > 0) throw validationError(errors);
  if (schema.timestamps) {
    spec.set.updatedAt = now.toISOString();
    preview.updatedAt = spec.set.updatedAt;
  }
  return preview;
}

/**
 * Takes the secret fields (a password) out of a create's document or an update's spec: they are
 * hashed by their collection, never stored as sent. Only a plain value sets one; removing it or any
 * other command is a 400.
 */
export function takeSecrets(secrets: readonly string[], spec: UpdateSpec): Record<string, unknown> {
  const taken: Record<string, unknown> = {};
  for (const field of secrets) {
    if (spec.unset.includes(field) || field in spec.inc || field in spec.push || field in spec.pull || field in spec.addUnique) {
      throw validationError({ [field]: 'can only be set, not removed or changed by a command' });
    }
    if (field in spec.set) {
      taken[field] = spec.set[field];
      delete spec.set[field];
    }
  }
  return taken;
}

export function requireObjectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw Errors.badRequest('the request body must be a JSON object');
  return body as Record<string, unknown>;
}
