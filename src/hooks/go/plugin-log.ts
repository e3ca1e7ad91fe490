/**
 * A Go plugin's output as log lines: hclog's JSON lines (`@level`, `@message`, `@timestamp` and
 * fields), its plain `[LEVEL] message` lines, and untagged lines (debug, or error once a
 * `panic:` / `fatal error:` line has begun a crash report); the GRPCStdio stream's stdout/stderr.
 */

export type PluginLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
/** Receives the plugin's log lines (hclog JSON on stderr, GRPCStdio output, stray stdout). */
export type PluginLog = (level: PluginLogLevel, message: string, fields: Record<string, unknown>) => void;

/** The plugin's stderr, line by line. Tracks hclog's "panic: … / fatal error: …" state. */
export class PluginStderr {
  private panicking = false;

  constructor(private readonly log: PluginLog) {}

  line(raw: string): void {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
          const fields: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(entry)) {
            if (k === '@level' || k === '@message' || k === '@timestamp') continue;
            fields[k.startsWith('@') ? k.slice(1) : k] = v;
          }
          if (typeof entry['@timestamp'] === 'string') fields.time = entry['@timestamp'];
          const level = levelOf(entry['@level']);
          if (level === undefined || typeof entry['@message'] !== 'string') this.log('debug', line, {});
          else this.log(level, entry['@message'], fields);
          return;
        }
      } catch {
        // not JSON: fall through
      }
    }
    const tagged = /^\[(TRACE|DEBUG|INFO|WARN|ERROR)\]\s*/.exec(line);
    if (tagged) {
      this.log(tagged[1].toLowerCase() as PluginLogLevel, line.slice(tagged[0].length), {});
      return;
    }
    if (line.startsWith('panic: ') || line.startsWith('fatal error: ')) this.panicking = true;
    this.log(this.panicking ? 'error' : 'debug', line, {});
  }
}

/**
 * GRPCStdio's chunks (the plugin's os.Stdout and os.Stderr) as whole lines: stdout at info,
 * stderr at warn. `end()` flushes a last line without its newline.
 */
export class PluginStdio {
  private readonly pending: Record<1 | 2, string> = { 1: '', 2: '' };

  constructor(private readonly log: PluginLog) {}

  data(channel: 'STDOUT' | 'STDERR' | string, chunk: Buffer): void {
    const c = channel === 'STDERR' ? 2 : 1;
    this.pending[c] += chunk.toString('utf8');
    this.flush(c, false);
  }

  end(): void {
    this.flush(1, true);
    this.flush(2, true);
  }

  private flush(channel: 1 | 2, final: boolean): void {
    const lines = this.pending[channel].split('\n');
    this.pending[channel] = final ? '' : lines.pop()!;
    for (const line of lines) {
      if (line !== '') this.log(channel === 1 ? 'info' : 'warn', line, { stream: channel === 1 ? 'stdout' : 'stderr' });
    }
  }
}

function levelOf(v: unknown): PluginLogLevel | undefined {
  switch (v) {
    case 'trace':
    case 'debug':
    case 'info':
    case 'warn':
    case 'error':
      return v;
    case 'warning':
      return 'warn';
    default:
      return undefined;
  }
}
