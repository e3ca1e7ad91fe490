// Validate (every POST and PUT): a title of at most 200 characters, a priority from 1 to 10.
// Unit-tested without a server by test/example-hooks.test.ts (runHook from deployd-ts).
if (typeof this.title === 'string' && this.title.length > 200) error('title', 'is too long (200 characters at most)');
if (typeof this.priority === 'number' && (this.priority < 1 || this.priority > 10)) error('priority', 'must be from 1 to 10');
