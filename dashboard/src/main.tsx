/**
 * The deployd-ts dashboard: log in with the master key, then collections and their schema, data,
 * hooks (with the load error inline), the live event monitor, real-time connections per instance,
 * hook logs and health. Everything comes from the admin API (/_admin/).
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, followMonitor, forgetToken, login, request, savedToken, seg } from './api';
import './style.css';

const TYPES = ['string', 'number', 'boolean', 'date', 'object', 'array'];
const EVENTS = ['beforerequest', 'validate', 'post', 'put', 'get', 'delete', 'aftercommit', 'login'];
const TABS = ['Collections', 'Data', 'Hooks', 'Monitor', 'Connections', 'Logs', 'Health'] as const;
type Tab = (typeof TABS)[number];

interface Summary { name: string; type: string | null; ok: boolean; error: string | null; properties: number; hooks: string[]; hookErrors: Record<string, string> }

function App() {
  const [token, setToken] = useState(savedToken());
  const [tab, setTab] = useState<Tab>('Collections');
  const [collections, setCollections] = useState<Summary[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [instance, setInstance] = useState('');
  const [events, setEvents] = useState<any[]>([]);
  const [live, setLive] = useState(false);

  const refresh = async () => {
    try {
      const list = await request<Summary[]>('GET', '/_admin/collections');
      setCollections(list);
      setSelected((current) => (current && list.some((c) => c.name === current) ? current : list[0]?.name ?? null));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) logout();
    }
  };
  const logout = () => {
    void request('POST', '/_admin/logout').catch(() => {});
    forgetToken();
    setToken(null);
  };

  useEffect(() => {
    const ended = () => { forgetToken(); setToken(null); };
    window.addEventListener('deployd-logged-out', ended);
    return () => window.removeEventListener('deployd-logged-out', ended);
  }, []);

  useEffect(() => {
    if (!token) return;
    void refresh();
    void request('GET', '/_admin/session').then((s) => setInstance(s.instance), () => {});
    return followMonitor(
      (entry) => setEvents((list) => [entry, ...list].slice(0, 500)),
      (update) => setEvents((list) => list.map((e) => (e.id === update.id ? { ...e, others: { ...e.others, [update.instance]: update.audience } } : e))),
      setLive,
    );
  }, [token]);

  if (!token) return <Login onLogin={setToken} />;
  return (
    <div class="shell">
      <header>
        <strong>deployd-ts</strong>
        <nav>{TABS.map((t) => <button class={t === tab ? 'tab active' : 'tab'} data-tab={t} onClick={() => setTab(t)}>{t}</button>)}</nav>
        <span class="muted" id="instance">instance {instance}</span>
        <button class="link" onClick={logout}>Log out</button>
      </header>
      <aside>
        <h3>Collections</h3>
        <ul class="collections">
          {collections.map((c) => (
            <li class={c.name === selected ? 'selected' : ''} onClick={() => setSelected(c.name)} data-collection={c.name}>
              {c.name} {!c.ok || Object.keys(c.hookErrors).length > 0 ? <span class="bad" title={c.error ?? Object.values(c.hookErrors).join('\n')}>●</span> : null}
            </li>
          ))}
        </ul>
      </aside>
      <main>
        {tab === 'Collections' && <Collections selected={collections.find((c) => c.name === selected) ?? null} onChange={async (name) => { await refresh(); if (name !== undefined) setSelected(name); }} />}
        {tab === 'Data' && (selected ? <Data name={selected} key={selected} /> : <p>Create a collection first.</p>)}
        {tab === 'Hooks' && (selected ? <Hooks name={selected} key={selected} onChange={refresh} /> : <p>Create a collection first.</p>)}
        {tab === 'Monitor' && <Monitor events={events} live={live} />}
        {tab === 'Connections' && <Connections />}
        {tab === 'Logs' && <Logs />}
        {tab === 'Health' && <Health />}
      </main>
    </div>
  );
}

function Login({ onLogin }: { onLogin: (token: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      onLogin(await login(key));
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>deployd-ts dashboard</h1>
      <label>Master key <input id="master-key" type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} /></label>
      <p class="muted">Printed at first start; <code>deployd showkey</code> shows it again.</p>
      <button id="login" type="submit">Log in</button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}

interface PropRow { name: string; type: string; required: boolean }

function Collections({ selected, onChange }: { selected: Summary | null; onChange: (name?: string) => Promise<void> }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState('Collection');
  const [rows, setRows] = useState<PropRow[]>([{ name: '', type: 'string', required: false }]);
  const [message, setMessage] = useState('');
  const [source, setSource] = useState('');
  const [editMessage, setEditMessage] = useState('');

  useEffect(() => {
    setEditMessage('');
    if (!selected) return setSource('');
    void request('GET', `/_admin/collections/${seg(selected.name)}`).then((c) => setSource(c.source ?? ''), (err) => setEditMessage(err.message));
  }, [selected?.name]);

  const create = async (e: Event) => {
    e.preventDefault();
    const properties: Record<string, unknown> = {};
    for (const row of rows) if (row.name.trim()) properties[row.name.trim()] = { type: row.type, ...(row.required ? { required: true } : {}) };
    try {
      await request('POST', '/_admin/collections', { name: name.trim(), config: { type: kind, properties } });
      setMessage(`created /${name.trim()}`);
      setName('');
      setRows([{ name: '', type: 'string', required: false }]);
      await onChange(name.trim());
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  const save = async () => {
    if (!selected) return;
    let config: unknown;
    try {
      config = JSON.parse(source);
    } catch (err) {
      return setEditMessage(`not JSON: ${(err as Error).message}`);
    }
    try {
      await request('PUT', `/_admin/collections/${seg(selected.name)}`, { config });
      setEditMessage('saved and applied');
      await onChange();
    } catch (err) {
      setEditMessage((err as Error).message);
    }
  };
  const remove = async () => {
    if (!selected || !confirm(`Delete the collection ${selected.name}? Its stored documents are kept.`)) return;
    await request('DELETE', `/_admin/collections/${seg(selected.name)}`);
    await onChange();
  };

  return (
    <div class="columns">
      <form class="panel" onSubmit={create} id="create-collection">
        <h2>New collection</h2>
        <label>Name (URL path) <input id="new-name" value={name} placeholder="todos" onInput={(e) => setName(e.currentTarget.value)} /></label>
        <label>Type <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}><option>Collection</option><option>UserCollection</option></select></label>
        <table class="props">
          <thead><tr><th>Property</th><th>Type</th><th>Required</th><th /></tr></thead>
          <tbody>
            {rows.map((row, i) => (
              <tr>
                <td><input class="prop-name" value={row.name} onInput={(e) => setRows(rows.map((r, j) => (j === i ? { ...r, name: e.currentTarget.value } : r)))} /></td>
                <td><select class="prop-type" value={row.type} onChange={(e) => setRows(rows.map((r, j) => (j === i ? { ...r, type: e.currentTarget.value } : r)))}>{TYPES.map((t) => <option>{t}</option>)}</select></td>
                <td><input type="checkbox" checked={row.required} onChange={(e) => setRows(rows.map((r, j) => (j === i ? { ...r, required: e.currentTarget.checked } : r)))} /></td>
                <td><button type="button" class="link" onClick={() => setRows(rows.filter((_, j) => j !== i))}>remove</button></td>
              </tr>
            ))}
          </tbody>
        </table>
        <button type="button" class="link" onClick={() => setRows([...rows, { name: '', type: 'string', required: false }])}>+ property</button>
        <button type="submit" id="create">Create</button>
        {message && <p class="note" id="create-message">{message}</p>}
      </form>
      {selected && (
        <div class="panel">
          <h2>{selected.name} <small class="muted">{selected.type}</small></h2>
          {selected.error && <p class="error">{selected.error}</p>}
          {Object.entries(selected.hookErrors).map(([event, error]) => <p class="error hook-error">{event}: {error}</p>)}
          <label>config.json <textarea id="config-source" rows={18} spellcheck={false} value={source} onInput={(e) => setSource(e.currentTarget.value)} /></label>
          <div class="row"><button onClick={save} id="save-config">Save</button><button class="danger" onClick={remove}>Delete</button></div>
          {editMessage && <p class="note">{editMessage}</p>}
        </div>
      )}
    </div>
  );
}

function Data({ name }: { name: string }) {
  const [query, setQuery] = useState('{"$limit": 50}');
  const [docs, setDocs] = useState<any[]>([]);
  const [count, setCount] = useState<number | null>(null);
  const [message, setMessage] = useState('');
  const [draft, setDraft] = useState('{\n  \n}');
  const [editing, setEditing] = useState<string | null>(null);

  const load = async () => {
    try {
      const q = query.trim() ? `?${encodeURIComponent(query.trim())}` : '';
      setDocs(await request('GET', `/_admin/collections/${seg(name)}/documents${q}`));
      const { $limit: _l, $skip: _s, $sort: _o, $fields: _f, ...filter } = query.trim() ? JSON.parse(query) : {};
      setCount((await request('GET', `/_admin/collections/${seg(name)}/documents/count?${encodeURIComponent(JSON.stringify(filter))}`)).count);
      setMessage('');
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  useEffect(() => void load(), [name]);

  const columns = useMemo(() => {
    const keys = new Set<string>(['id']);
    for (const d of docs) for (const k of Object.keys(d)) keys.add(k);
    return [...keys];
  }, [docs]);

  const save = async () => {
    try {
      const body = JSON.parse(draft);
      if (editing) await request('PUT', `/_admin/collections/${seg(name)}/documents/${encodeURIComponent(editing)}`, body);
      else await request('POST', `/_admin/collections/${seg(name)}/documents`, body);
      setEditing(null);
      setDraft('{\n  \n}');
      await load();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  const remove = async (id: string) => {
    if (!confirm(`Delete ${id}?`)) return;
    try {
      await request('DELETE', `/_admin/collections/${seg(name)}/documents/${encodeURIComponent(id)}`);
      await load();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };

  return (
    <div>
      <h2>{name} <small class="muted">{count === null ? '' : `${count} documents`}</small></h2>
      <div class="row">
        <input id="query" class="grow" value={query} onInput={(e) => setQuery(e.currentTarget.value)} placeholder='{"done": false, "$sort": {"createdAt": -1}}' />
        <button onClick={load} id="run-query">Query</button>
      </div>
      {message && <p class="error" id="data-message">{message}</p>}
      <div class="grid-wrap">
        <table class="grid" id="documents">
          <thead><tr>{columns.map((c) => <th>{c}</th>)}<th /></tr></thead>
          <tbody>
            {docs.map((d) => (
              <tr>
                {columns.map((c) => <td title={JSON.stringify(d[c])}>{cell(d[c])}</td>)}
                <td class="actions">
                  <button class="link" onClick={() => { const { id, ...rest } = d; setEditing(id); setDraft(JSON.stringify(rest, null, 2)); }}>edit</button>
                  <button class="link danger" onClick={() => remove(d.id)}>delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="panel">
        <h3>{editing ? `Edit ${editing}` : 'Add a document'}</h3>
        <textarea id="document-draft" rows={6} spellcheck={false} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />
        <div class="row">
          <button onClick={save} id="save-document">{editing ? 'Save' : 'Add'}</button>
          {editing && <button class="link" onClick={() => { setEditing(null); setDraft('{\n  \n}'); }}>cancel</button>}
        </div>
      </div>
    </div>
  );
}

function cell(value: unknown): string {
  if (value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function Hooks({ name, onChange }: { name: string; onChange: () => Promise<void> }) {
  const [hooks, setHooks] = useState<any[]>([]);
  const [event, setEvent] = useState('post');
  const [language, setLanguage] = useState('js');
  const [source, setSource] = useState('');
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);

  const load = async () => {
    const answer = await request('GET', `/_admin/collections/${seg(name)}/hooks`);
    setHooks(answer.hooks);
    return answer.hooks as any[];
  };
  const pick = (list: any[], ev: string, lang: string) => {
    const found = list.find((h) => h.event === ev && h.language === lang);
    setSource(found?.source ?? (lang === 'js' ? '// `this` is the document; cancel(message, status) stops the request\n' : ''));
    setResult(found?.error ? { ok: false, text: found.error } : null);
  };
  // The editor appears once the files are loaded: what the user types is never replaced by a late answer.
  const [ready, setReady] = useState(false);
  useEffect(() => void load().then((list) => { pick(list, event, language); setReady(true); }, (err) => setResult({ ok: false, text: err.message })), [name]);

  const save = async () => {
    setResult({ ok: true, text: 'saving…' });
    try {
      const answer = await request('PUT', `/_admin/collections/${seg(name)}/hooks/${event}.${language}`, { source });
      setResult({ ok: true, text: answer.state === 'building' ? `${answer.file} saved; the Go build is still running` : `${answer.file} saved and loaded` });
      await load();
      await onChange();
    } catch (err) {
      setResult({ ok: false, text: (err as Error).message });
    }
  };

  if (!ready) return <p>{result?.text ?? 'loading…'}</p>;
  return (
    <div>
      <h2>Hooks of {name}</h2>
      <ul class="hook-files">
        {hooks.map((h) => (
          <li onClick={() => { setEvent(h.event); setLanguage(h.language); pick(hooks, h.event, h.language); }}>
            {h.file} {h.error ? <span class="bad">● {h.error}</span> : <span class="good">loaded</span>}
          </li>
        ))}
      </ul>
      <div class="row">
        <select id="hook-event" value={event} onChange={(e) => { setEvent(e.currentTarget.value); pick(hooks, e.currentTarget.value, language); }}>{EVENTS.map((ev) => <option>{ev}</option>)}</select>
        <select id="hook-language" value={language} onChange={(e) => { setLanguage(e.currentTarget.value); pick(hooks, event, e.currentTarget.value); }}><option value="js">JavaScript</option><option value="go">Go</option></select>
        <button id="save-hook" onClick={save}>Save</button>
      </div>
      {result && <p id="hook-result" class={result.ok ? 'note' : 'error hook-error'}>{result.text}{result.ok ? null : <Culprit error={result.text} source={source} />}</p>}
      <textarea id="hook-source" class="code" rows={20} spellcheck={false} value={source} onInput={(e) => setSource(e.currentTarget.value)} />
    </div>
  );
}

/** The source line a load error points at (`file.js:3:14`), shown under the error. */
function Culprit({ error, source }: { error: string; source: string }) {
  const match = /\.(?:js|go):(\d+):(\d+)/.exec(error);
  if (!match) return null;
  const line = Number(match[1]);
  const text = source.split('\n')[line - 1];
  if (text === undefined) return null;
  return <code class="culprit">{`line ${line}: ${text}\n${' '.repeat(`line ${line}: `.length + Number(match[2]) - 1)}^`}</code>;
}

/** `anonymous ×2, user:ab12 ×1 · refused: user:cd34`, per instance when there are several. */
function audience(entry: any): string {
  const one = (a: { delivered: Record<string, number>; refused: string[] }) => {
    const got = Object.entries(a.delivered).map(([who, n]) => `${who} ×${n}`);
    const refused = a.refused.length > 0 ? ` · refused: ${a.refused.join(', ')}` : '';
    return `${got.length > 0 ? got.join(', ') : 'nobody'}${refused}`;
  };
  const others = Object.entries((entry.others ?? {}) as Record<string, any>);
  if (others.length === 0) return one(entry.audience);
  return [[entry.instance, entry.audience], ...others].map(([instance, a]) => `${instance}: ${one(a)}`).join(' | ');
}

function Monitor({ events, live }: { events: any[]; live: boolean }) {
  const [filter, setFilter] = useState('');
  const shown = events.filter((e) => !filter || JSON.stringify(e).includes(filter));
  return (
    <div>
      <h2>Live events <small class={live ? 'good' : 'bad'} id="monitor-state">{live ? '● live' : '● reconnecting'}</small></h2>
      <input class="grow" placeholder="filter" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <table class="grid" id="monitor">
        <thead><tr><th>time</th><th>event</th><th>room / users</th><th>audience</th><th>instance</th><th>payload</th></tr></thead>
        <tbody>
          {shown.map((e) => (
            <tr class="monitor-row">
              <td>{e.timestamp?.slice(11, 23)}</td>
              <td><strong>{e.summary}</strong><div class="muted">{e.id}</div></td>
              <td>{e.room ?? (e.userIds ? `users ${e.userIds.join(', ')}` : e.type === 'custom_event' ? 'everyone' : '')}</td>
              <td class="audience">{audience(e)}</td>
              <td>{e.instance}</td>
              <td>{e.payload === null ? <span class="muted" title="it happened while no dashboard was watching">not kept</span> : <code>{cell(e.payload)}</code>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function usePoll<T>(path: string, everyMs: number): [T | null, string] {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let stopped = false;
    const tick = async () => {
      try {
        const value = await request<T>('GET', path);
        if (!stopped) { setData(value); setError(''); }
      } catch (err) {
        if (!stopped) setError((err as Error).message);
      }
    };
    void tick();
    const timer = setInterval(tick, everyMs);
    return () => { stopped = true; clearInterval(timer); };
  }, [path]);
  return [data, error];
}

function Connections() {
  const [data, error] = usePoll<any>('/_admin/realtime', 2000);
  if (!data) return <p>{error || 'loading…'}</p>;
  const rows = data.instances.flatMap((i: any) => i.connections.map((c: any) => ({ ...c, instance: i.instance })));
  return (
    <div>
      <h2>Real-time connections <small class="muted">{rows.length} on {data.instances.length} instance(s){data.complete ? '' : ' — Redis unreachable: this instance only'}</small></h2>
      <table class="grid" id="connections">
        <thead><tr><th>instance</th><th>#</th><th>who</th><th>collections</th><th>rooms</th><th>since</th></tr></thead>
        <tbody>
          {rows.map((c: any) => (
            <tr><td>{c.instance}</td><td>{c.id}</td><td>{c.identity}</td><td>{c.collections === null ? 'all' : c.collections.join(', ')}{c.excluded.length ? ` (not ${c.excluded.join(', ')})` : ''}</td><td>{c.rooms.join(', ')}</td><td>{c.connectedAt.slice(11, 19)}</td></tr>
          ))}
        </tbody>
      </table>
      <h3>Rooms</h3>
      <ul>{Object.entries(data.rooms).map(([room, n]) => <li>{room}: {String(n)}</li>)}</ul>
    </div>
  );
}

function Logs() {
  const [lines, setLines] = useState<any[]>([]);
  useEffect(() => {
    let after = 0;
    let stopped = false;
    const tick = async () => {
      try {
        const fresh = await request<any[]>('GET', `/_admin/logs?after=${after}`);
        if (stopped || fresh.length === 0) return;
        after = fresh[fresh.length - 1].seq;
        setLines((old) => [...old, ...fresh].slice(-1000));
      } catch {
        // shown as stale; the next tick tries again
      }
    };
    void tick();
    const timer = setInterval(tick, 2000);
    return () => { stopped = true; clearInterval(timer); };
  }, []);
  return (
    <div>
      <h2>Hook and collection logs <small class="muted">this instance</small></h2>
      <table class="grid logs" id="logs">
        <tbody>
          {[...lines].reverse().map((l) => (
            <tr class={`level-${l.level}`}><td>{l.time.slice(11, 23)}</td><td>{l.level}</td><td>{l.collection ?? ''}{l.event ? ` ${l.event}` : ''}</td><td>{l.message}{l.detail !== undefined ? <code> {cell(l.detail)}</code> : null}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Health() {
  const [status, error] = usePoll<any>('/_admin/status', 3000);
  if (!status) return <p>{error || 'loading…'}</p>;
  const state = (ok: boolean, text: string) => <span class={ok ? 'good' : 'bad'}>● {text}</span>;
  return (
    <div>
      <h2>Health <small class="muted">instance {status.instance}, up {status.uptimeSeconds} s, Node {status.node}</small></h2>
      <dl class="health" id="health">
        <dt>Store</dt><dd>{state(status.store === 'up', status.store)}</dd>
        <dt>Bus</dt><dd>{state(status.bus !== 'degraded', status.bus)}</dd>
        <dt>Real-time</dt><dd>{status.realtime.enabled ? `${status.realtime.connections} connections here` : 'off'}</dd>
        <dt>Hook workers</dt><dd>{status.hooks.workers.length === 0 ? 'none running (no JavaScript hooks)' : status.hooks.workers.map((w: any) => <div>{state(w.ready, `pid ${w.pid}`)} {w.inflight} in flight</div>)}</dd>
        <dt>Go sidecars</dt><dd>{status.hooks.sidecars.length === 0 ? 'none' : status.hooks.sidecars.map((s: any) => <div>{state(s.state === 'ready', `${s.collection} ${s.state}`)} {s.pid ? `pid ${s.pid}` : ''} {Object.values(s.errors).join('; ')}</div>)}</dd>
        <dt>Collections</dt><dd>{status.collections.map((c: any) => <div>{state(c.ok && Object.keys(c.hookErrors).length === 0, c.name)} {c.error ?? Object.values(c.hookErrors).join('; ')}</div>)}</dd>
      </dl>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
