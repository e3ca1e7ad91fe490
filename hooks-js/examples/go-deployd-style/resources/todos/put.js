/** @param {import('../../../../types/context').HookContext<import('./todo').Todo>} context */
function Run(context) {
  // Only root reassigns todos.
  if (!context.isRoot) context.protect('assignedTo');
  if (context.data.completed !== context.previous.completed) {
    context.data.status = context.data.completed ? 'done' : 'open';
    context.emit('todo_toggled', { id: context.data.id, completed: context.data.completed });
  }
}
