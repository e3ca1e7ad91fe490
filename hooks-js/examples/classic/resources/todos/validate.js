/// <reference types="../../../../types/classic" />
// Validate runs for POST and PUT, before Post/Put. error() records a message per field and goes
// on; the request then fails with 400 {"errors": {...}}.

/** `data` is `this`; narrowed here with JSDoc to get completions for the todo's fields. */
var todo = /** @type {import('./todo').Todo} */ (data);

errorUnless(todo.title && todo.title.length >= 3, 'title', 'needs at least 3 characters');
errorIf(todo.priority !== undefined && (todo.priority < 1 || todo.priority > 10), 'priority', 'must be from 1 to 10');

if (!hasErrors() && changed('title')) console.log('title set to', todo.title);
