/**
 * About how many bytes `JSON.stringify(value)` would take, without building the string: the
 * history and the emit limit size every event, and a second copy of each large event only to
 * measure it would double the garbage a busy server makes. Exact for text without characters JSON
 * escapes; escapes are not counted.
 */
export function jsonSize(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(value) + 2;
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'object': {
      if (value === null) return 4;
      if (Array.isArray(value)) {
        let size = 2 + Math.max(0, value.length - 1);
        for (const item of value) size += item === undefined || typeof item === 'function' ? 4 : jsonSize(item);
        return size;
      }
      let size = 2;
      let fields = 0;
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        if (item === undefined || typeof item === 'function') continue;
        size += Buffer.byteLength(key) + 3 + jsonSize(item);
        fields++;
      }
      return size + Math.max(0, fields - 1);
    }
    default:
      return 0;
  }
}
