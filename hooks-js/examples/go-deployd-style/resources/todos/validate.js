/** @param {import('../../../../types/context').HookContext<import('./todo').Todo>} context */
function Run(context) {
  const todo = context.data;
  if (!todo.title || todo.title.trim().length < 3) context.error('title', 'needs at least 3 characters');
  if (todo.priority !== undefined && (todo.priority < 1 || todo.priority > 10)) context.error('priority', 'must be from 1 to 10');
  if (context.hasErrors()) context.log('rejected a todo', { title: todo.title });
}
