/** @param {import('../../../../types/context').HookContext<import('./todo').Todo>} context */
async function Run(context) {
  // An async Run: the event waits for its promise. The file is still a Deployd script body, so
  // the classic identifiers such as `dpd` are in scope here too.
  if (context.method === 'DELETE') {
    context.emit('todo_deleted', { id: context.data.id });
    return;
  }
  if (context.method === 'POST') context.setResponseStatus(201);
  const open = await dpd.todos.get({ status: 'open', $fields: { id: 1 } });
  context.addResponseField('openTodos', open.length);
  context.emit('todos_changed', { id: context.data.id, method: context.method, open: open.length });
}
