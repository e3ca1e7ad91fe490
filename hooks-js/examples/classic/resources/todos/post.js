/// <reference types="../../../../types/classic" />
// Post runs for POST after Validate; `this` already has its id and defaults.

// A todo belongs to whoever creates it unless it says otherwise.
if (!this.assignedTo) this.assignedTo = me ? me.username : 'nobody';

// Only root may create a todo that is already done.
cancelIf(this.status === 'done' && !isRoot, 'only root can create a finished todo', 403);
