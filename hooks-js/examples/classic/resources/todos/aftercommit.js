/// <reference types="../../../../types/classic" />
// AfterCommit runs after the write is stored and before the response is sent. `method` says what
// was written; the response functions change the answer; a failure here is only logged.

if (method === 'POST') {
  setResponseStatus(201);
  emit('todo_created', { id: this.id, title: this.title });
}
if (method === 'DELETE') emit('todo_deleted', { id: this.id });

// The internal client runs a request on a collection as the same caller, its hooks included (here
// get.js, and beforerequest.js's cap of 100); the event waits for it. Handlers run with `this` =
// this document. (The answer to a DELETE is `{"count": n}`, which the response functions leave as
// it is.)
if (method !== 'DELETE') {
  dpd.todos.get({ status: 'open', $fields: { id: 1 } }).then(function (open) {
    addResponseField('openTodos', open.length);
  }).fail(function (err) {
    console.warn('could not list open todos:', err.message);
  });
}
