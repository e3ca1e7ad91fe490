/// <reference types="../../../../types/classic" />
// Put runs for PUT: `this` is the stored document with the body merged over it, `previous` the
// stored document.

// Only root reassigns todos: for anybody else the change is silently not saved.
if (!isRoot) protect('assignedTo');

// `status` follows `completed`.
if (changed('completed')) {
  this.status = this.completed ? 'done' : 'open';
  emit('todo_toggled', { id: this.id, completed: this.completed });
}

if (previous.status === 'done' && changed('title')) error('title', 'cannot rename a finished todo');
