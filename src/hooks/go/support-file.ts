/**
 * The Go declarations a hook file relies on without declaring them (`EventContext`, `DpdError`,
 * go-deployd's `deployd.Log`), as one generated file per hook package. The build adds it to each
 * package it compiles (build.ts); `deployd go-env` writes the same text next to the hooks for
 * editors (go-env.ts). A name the user's file declares itself is left out.
 */

/** The Go hook SDK's module path (hooks-go/go.mod). */
export const SDK_MODULE = 'github.com/deployd-ts/deployd-ts/hooks-go';

/** The support file of package `pkg`; `header` is its first comment line (who generated it). */
export function goSupportFile(header: string, pkg: string, declared: ReadonlySet<string>): string {
  const lines = [`// ${header}`, '', `package ${pkg}`, '', `import "${SDK_MODULE}/hooks"`, '', 'var _ hooks.Handler', ''];
  if (!declared.has('EventContext')) lines.push('// EventContext is what a hook reads and changes (hooks.EventContext).', 'type EventContext = hooks.EventContext', '');
  if (!declared.has('DpdError')) lines.push('// DpdError is a failed ctx.Dpd(…) call.', 'type DpdError = hooks.DpdError', '');
  if (!declared.has('deployd')) {
    lines.push("// deployd.Log is go-deployd's no-op logger; use ctx.Log to log.", 'var deployd = struct{ Log func(args ...interface{}) }{Log: func(...interface{}) {}}', '', 'var _ = deployd', '');
  }
  return lines.join('\n');
}
