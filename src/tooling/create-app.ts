/**
 * `deployd create <dir>`: a new app from the example `make run` serves (examples/todos: a todos
 * collection with the seed's aftercommit.js, an incidents collection with its aftercommit.go, a
 * page that updates live), plus what an editor needs: the hook types in `types/` and a
 * `jsconfig.json` that checks `resources/**\/*.js` against them, a README and a .gitignore.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findGo } from '../hooks/go/build.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const TEMPLATE_DIR = path.join(ROOT, 'examples', 'todos');
const HOOK_TYPES_DIR = path.join(ROOT, 'hooks-js', 'types');

export class CreateError extends Error {}

export interface CreateResult {
  dir: string;
  files: string[];
  /** Why the Go hook was left out, when it was. */
  withoutGo?: string;
}

export function createApp(target: string, options: { noGo?: boolean } = {}): CreateResult {
  const dir = path.resolve(target);
  if (fs.existsSync(dir) && (!fs.statSync(dir).isDirectory() || fs.readdirSync(dir).length > 0)) {
    throw new CreateError(`${dir} already exists and is not an empty folder; pick a new name`);
  }
  let withoutGo: string | undefined;
  if (options.noGo) withoutGo = '--no-go';
  else {
    try {
      findGo('go');
    } catch {
      withoutGo = 'no Go toolchain on PATH (install Go 1.26+ and copy it from the deployd-ts examples to add it back)';
    }
  }
  const files: string[] = [];
  const write = (rel: string, text: string | Buffer) => {
    const full = path.join(dir, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, text);
    files.push(rel);
  };
  const copyTree = (from: string, to: string) => {
    for (const item of fs.readdirSync(from, { withFileTypes: true })) {
      if (item.name.startsWith('.')) continue; // .deployd/: the example's own key and data
      const source = path.join(from, item.name);
      const rel = path.join(to, item.name);
      if (item.isDirectory()) copyTree(source, rel);
      else if (!(withoutGo && item.name.endsWith('.go'))) write(rel, fs.readFileSync(source));
    }
  };
  fs.mkdirSync(dir, { recursive: true });
  copyTree(path.join(TEMPLATE_DIR, 'resources'), 'resources');
  copyTree(path.join(TEMPLATE_DIR, 'public'), 'public');
  for (const name of ['classic.d.ts', 'context.d.ts']) write(path.join('types', name), fs.readFileSync(path.join(HOOK_TYPES_DIR, name)));
  write('jsconfig.json', JSON.stringify({
    compilerOptions: {
      checkJs: true,
      allowJs: true,
      noEmit: true,
      target: 'ES2022',
      lib: ['ES2022'],
      types: [],
      module: 'ESNext',
      moduleResolution: 'bundler',
    },
    include: ['resources/**/*.js', 'types/classic.d.ts'],
  }, null, 2) + '\n');
  write('.gitignore', '# the master key and the SQLite database\n.deployd/\n');
  write('README.md', readme(path.basename(dir), withoutGo));
  return { dir, files: files.sort(), ...(withoutGo ? { withoutGo } : {}) };
}

function readme(name: string, withoutGo: string | undefined): string {
  return `# ${name}

A [deployd-ts](https://github.com/) app. Start it from this folder:

\`\`\`sh
deployd            # http://localhost:2403 (the first start prints the master key once)
\`\`\`

Then open http://localhost:2403 in two tabs and add a task with priority 8 or more: both tabs update
at once and show an "urgent" notification. The API is described at http://localhost:2403/openapi.json
and browsable at http://localhost:2403/_docs.

| Path | What |
| --- | --- |
| \`resources/todos/config.json\` | the todos collection: properties, and the custom events it declares |
| \`resources/todos/aftercommit.js\` | a JavaScript hook: runs after each write, emits real-time events, adds a response message |
${withoutGo ? '' : '| `resources/incidents/aftercommit.go` | the same in Go (built and run by the server; needs Go 1.26+) |\n'}| \`public/index.html\` | the page: \`/dpd.js\` for the REST calls and the live updates over \`/ws\` |
| \`jsconfig.json\`, \`types/\` | editor completion and checking for hooks (\`npx tsc -p jsconfig.json\`) |
| \`.deployd/\` | created on first start: the master key and the SQLite database (not for git) |

- Add a collection: a folder under \`resources/\` with a \`config.json\`; the running server picks it up.
- Hooks: \`resources/<collection>/<event>.js\` (or \`.go\`) for beforerequest, validate, post, put,
  get, delete, aftercommit.
- Typed client for TypeScript: \`deployd types\` writes \`deployd-types.ts\`, then
  \`import { createAppClient } from './deployd-types'\`.
${withoutGo ? `\nThe Go hook (\`resources/incidents/aftercommit.go\`) was left out: ${withoutGo}.\n` : ''}`;
}
